-- wrk script for benchmarks/webhook_intake.py: every request is a distinct, correctly signed
-- Shopify orders/create delivery, taken in turn from a pool the benchmark wrote beforehand (wrk's
-- Lua has no HMAC, so Python signs them).
--
--   wrk ... --script deliveries.lua URL -- POOL TEMPLATE SHOP OFFSET MODE
--
-- POOL      one delivery a line: event id, order id, base64 HMAC-SHA256 of the body (tabs).
-- TEMPLATE  the body split around its order id, one part a line; the body is the parts joined
--           with the order id (Python signed exactly that string).
-- SHOP      the X-Shopify-Shop-Domain the connection expects.
-- OFFSET    the first pool entry to send (0-based); the next ones follow, wrapping at the end.
-- MODE      "unique" (the default) or "repeat": send entry OFFSET every time (a duplicate).
--
-- The request URL's path is the webhook path. Run with one wrk thread: the counter is per
-- thread, so two threads would send the same deliveries. done() prints how many entries were
-- taken ("pool-next: N" is the offset a later run must start from to send only new ones).

local entries = {}
local parts = {}
local shop = ""
local mode = "unique"
offset = 0
taken = 0

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   local pool_path, template_path = args[1], args[2]
   shop = args[3]
   offset = tonumber(args[4]) or 0
   mode = args[5] or "unique"
   for line in io.lines(template_path) do
      parts[#parts + 1] = line
   end
   for line in io.lines(pool_path) do
      local event, order, signature = line:match("^([^\t]+)\t([^\t]+)\t([^\t]+)$")
      if event then
         entries[#entries + 1] = { event, order, signature }
      end
   end
   if #entries == 0 or #parts == 0 then
      error("empty delivery pool or body template")
   end
end

function request()
   local index = offset
   if mode ~= "repeat" then
      index = offset + taken
   end
   taken = taken + 1
   local entry = entries[(index % #entries) + 1]
   local headers = {
      ["Content-Type"] = "application/json",
      ["X-Shopify-Topic"] = "orders/create",
      ["X-Shopify-Shop-Domain"] = shop,
      ["X-Shopify-Event-Id"] = entry[1],
      ["X-Shopify-Webhook-Id"] = "wh-" .. entry[1],
      ["X-Shopify-Hmac-Sha256"] = entry[3],
   }
   return wrk.format("POST", nil, headers, table.concat(parts, entry[2]))
end

function done(summary, latency, requests)
   local total, first = 0, 0
   for _, thread in ipairs(threads) do
      total = total + thread:get("taken")
      first = thread:get("offset")
   end
   io.write(string.format("pool-taken: %d\npool-next: %d\n", total, first + total))
end
