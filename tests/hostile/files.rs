//! Hostile cases: files (issue 19).

use super::common;

#[allow(unused_imports)]
use common::TempRepo;
