//! The tests of the unsafe code, run under valgrind's memcheck by `.ci/memcheck` (a use after
//! free, a double free or an invalid read fails them there).

mod handle;
mod task;
