//! The plugin's allocator: a bump arena in the module's own zeroed data,
//! in front of the system allocator.
//!
//! Why: the daemon runs every evaluation in a fresh instance. Rust's
//! default wasm allocator takes its first block by growing linear memory,
//! and every grow is an `mprotect` on instantiation and another on reset
//! (with TLB shootdowns): measured, most of a fresh call's cost. An arena
//! inside the initial memory needs no grow, and bumping a pointer is
//! cheaper than `dlmalloc` for the short-lived strings and vectors of one
//! call.
//!
//! Allocations that do not fit go to the system allocator. The arena is
//! reset whenever nothing allocated from it is alive — after every call of
//! a plugin that keeps no heap state between calls — so a reused instance
//! keeps using it.
#![allow(unsafe_code)]

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use std::alloc::System;

/// Bytes of arena.
const SIZE: usize = 64 * 1024;

#[repr(C, align(16))]
struct Bytes([u8; SIZE]);

struct State {
    /// Offset of the first free byte.
    next: usize,
    /// Arena allocations not yet freed.
    live: usize,
}

/// The allocator; see the module documentation.
pub struct Arena {
    bytes: UnsafeCell<Bytes>,
    state: UnsafeCell<State>,
}

// SAFETY: only on single-threaded wasm (no `atomics` target feature, as on
// `wasm32-unknown-unknown`, which plugins are built for): the allocator is
// never entered concurrently (nor re-entered: it calls nothing that
// allocates). Elsewhere `Arena` is not `Sync`, so it cannot be shared
// between threads, and cannot be a `static` allocator.
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
unsafe impl Sync for Arena {}

impl Arena {
    /// An empty arena.
    pub const fn new() -> Arena {
        Arena {
            bytes: UnsafeCell::new(Bytes([0; SIZE])),
            state: UnsafeCell::new(State { next: 0, live: 0 }),
        }
    }

    fn base(&self) -> usize {
        self.bytes.get() as usize
    }

    fn owns(&self, ptr: *mut u8) -> bool {
        let p = ptr as usize;
        p >= self.base() && p < self.base() + SIZE
    }
}

impl Default for Arena {
    fn default() -> Self {
        Arena::new()
    }
}

// SAFETY: every block handed out lies inside `bytes`, is aligned as asked,
// and does not overlap another live block: `next` only moves back when the
// block ending at it is freed, or to 0 when no block is live. Blocks not
// from the arena are the system allocator's and go back to it.
unsafe impl GlobalAlloc for Arena {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: single-threaded, not re-entered (see `Sync`).
        let state = unsafe { &mut *self.state.get() };
        let base = self.base();
        let start = (base + state.next + layout.align() - 1) & !(layout.align() - 1);
        match start.checked_add(layout.size()) {
            Some(end) if end <= base + SIZE => {
                state.next = end - base;
                state.live += 1;
                start as *mut u8
            }
            // SAFETY: the caller's layout contract is passed on unchanged.
            _ => unsafe { System.alloc(layout) },
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if !self.owns(ptr) {
            // SAFETY: not ours, so the system allocator's, with this layout.
            return unsafe { System.dealloc(ptr, layout) };
        }
        // SAFETY: single-threaded, not re-entered (see `Sync`).
        let state = unsafe { &mut *self.state.get() };
        state.live -= 1;
        if state.live == 0 {
            state.next = 0;
        } else if ptr as usize + layout.size() == self.base() + state.next {
            // The last block: its bytes can be handed out again.
            state.next = ptr as usize - self.base();
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if self.owns(ptr) {
            // SAFETY: single-threaded, not re-entered (see `Sync`).
            let state = unsafe { &mut *self.state.get() };
            let end = ptr as usize + layout.size();
            // The last block grows (or shrinks) in place when it fits.
            if end == self.base() + state.next && ptr as usize + new_size <= self.base() + SIZE {
                state.next = ptr as usize + new_size - self.base();
                return ptr;
            }
        }
        // SAFETY: as `GlobalAlloc::realloc`'s default: a new block, a copy
        // of the smaller size, then the old block freed.
        unsafe {
            let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
            let new = self.alloc(new_layout);
            if !new.is_null() {
                core::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
            new
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_aligned_distinct_and_the_arena_resets_when_empty() {
        let arena = Box::new(Arena::new());
        let l8 = Layout::from_size_align(24, 8).unwrap();
        let l16 = Layout::from_size_align(40, 16).unwrap();
        // SAFETY: layouts are non-zero; every block is freed with its layout.
        unsafe {
            let a = arena.alloc(l8);
            let b = arena.alloc(l16);
            assert!(arena.owns(a) && arena.owns(b));
            assert_eq!(b as usize % 16, 0);
            assert!(b as usize >= a as usize + 24);
            // Growing the last block keeps it in place.
            let b2 = arena.realloc(b, l16, 400);
            assert_eq!(b, b2);
            let big = Layout::from_size_align(SIZE, 8).unwrap();
            let outside = arena.alloc(big);
            assert!(!arena.owns(outside));
            arena.dealloc(outside, big);
            arena.dealloc(a, l8);
            arena.dealloc(b2, Layout::from_size_align(400, 16).unwrap());
            // Nothing alive: the next block starts at the beginning again.
            let c = arena.alloc(l8);
            assert_eq!(c, a);
            arena.dealloc(c, l8);
        }
    }
}
