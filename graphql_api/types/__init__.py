"""GraphQL object types: each translates one entity; relations load through DataLoaders."""
