//! State and receipt roots (work in progress).
