//! Pure planning: situations, diff, the immutable `Plan`, the deletion guard. No IO, no clock.
