//! Pair configuration: YAML → validated `SyncPairSpec`, with file:line:column errors.
