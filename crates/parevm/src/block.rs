//! Whole-block processing around the transaction engine (work in progress).
