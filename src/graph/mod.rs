//! Microsoft Graph client: auth, HTTP (retry, Retry-After, $batch, rate limit), typed resources.
//! Knows nothing of sync semantics.
