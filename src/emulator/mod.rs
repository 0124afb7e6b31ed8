//! A Microsoft Graph v1.0 emulator for several tenants on one loopback port. Shares no code with
//! `graph` or `engine`, so that a misreading of Graph in one cannot hide in the other.
