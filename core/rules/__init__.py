"""Pure rules of the domain: functions of values, no I/O, no clock, no settings."""
