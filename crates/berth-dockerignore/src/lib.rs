//! `.dockerignore` reading and matching with moby's `patternmatcher` semantics.
//!
//! Vocabulary: a *pattern* is one cleaned line of an ignore file; a leading `!`
//! makes it an *exclusion* (an exception that re-includes a path). A path is
//! ignored when the last pattern that applies to it, or to one of its parent
//! directories, is not an exclusion.
