//! Exports plain functions, two interfaces that share a function name, an echo function per
//! WIT value kind, and a resource: everything the invoke handler's tests call.
use std::cell::Cell;

wit_bindgen::generate!({ path: "../../../wit/invoke-test.wit", world: "calc" });

use exports::worldhost::test::{handles, kinds, more_ops, ops};

struct Calc;

thread_local! {
    static BUMPS: Cell<u32> = const { Cell::new(0) };
}

impl Guest for Calc {
    fn add(a: u32, b: u32) -> u32 {
        a.wrapping_add(b)
    }

    fn bump() -> u32 {
        BUMPS.with(|n| {
            n.set(n.get() + 1);
            n.get()
        })
    }

    fn crash() {
        core::arch::wasm32::unreachable()
    }

    fn nothing() {}

    fn spin() {
        let mut n = 0u64;
        loop {
            n = core::hint::black_box(n.wrapping_add(1));
        }
    }

    fn hog(mib: u32) -> u32 {
        let block = core::hint::black_box(vec![1u8; (mib as usize) << 20]);
        block.iter().map(|&b| u32::from(b)).sum()
    }
}

impl ops::Guest for Calc {
    fn mul(a: i32, b: i32) -> i32 {
        a.wrapping_mul(b)
    }

    fn scale(x: f64) -> f64 {
        x * 2.0
    }
}

impl more_ops::Guest for Calc {
    fn scale(x: f64) -> f64 {
        x * 10.0
    }
}

impl kinds::Guest for Calc {
    fn echo_bool(x: bool) -> bool {
        x
    }
    fn echo_s8(x: i8) -> i8 {
        x
    }
    fn echo_u8(x: u8) -> u8 {
        x
    }
    fn echo_s16(x: i16) -> i16 {
        x
    }
    fn echo_u16(x: u16) -> u16 {
        x
    }
    fn echo_s32(x: i32) -> i32 {
        x
    }
    fn echo_u32(x: u32) -> u32 {
        x
    }
    fn echo_s64(x: i64) -> i64 {
        x
    }
    fn echo_u64(x: u64) -> u64 {
        x
    }
    fn echo_f32(x: f32) -> f32 {
        x
    }
    fn echo_f64(x: f64) -> f64 {
        x
    }
    fn echo_char(x: char) -> char {
        x
    }
    fn echo_string(x: String) -> String {
        x
    }
    fn echo_bytes(x: Vec<u8>) -> Vec<u8> {
        x
    }
    fn echo_nested(x: Vec<Vec<String>>) -> Vec<Vec<String>> {
        x
    }
    fn echo_tuple(x: (u8, String, bool)) -> (u8, String, bool) {
        x
    }
    fn echo_point(x: kinds::Point) -> kinds::Point {
        x
    }
    fn echo_shape(x: kinds::Shape) -> kinds::Shape {
        x
    }
    fn echo_color(x: kinds::Color) -> kinds::Color {
        x
    }
    fn echo_perms(x: kinds::Perms) -> kinds::Perms {
        x
    }
    fn echo_option(x: Option<u32>) -> Option<u32> {
        x
    }
    fn echo_result(x: Result<String, u32>) -> Result<String, u32> {
        x
    }
    fn echo_unit_result(x: Result<(), ()>) -> Result<(), ()> {
        x
    }

    fn describe(a: u32, b: Option<u32>, c: Option<String>) -> String {
        format!("a={a} b={b:?} c={c:?}")
    }

    fn echo_shapes(x: Vec<kinds::Shape>) -> Vec<kinds::Shape> {
        x
    }
}

struct Counter(Cell<u32>);

impl handles::GuestCounter for Counter {
    fn new(start: u32) -> Self {
        Counter(Cell::new(start))
    }

    fn get(&self) -> u32 {
        self.0.get()
    }

    fn add(&self, by: u32) -> u32 {
        self.0.set(self.0.get() + by);
        self.0.get()
    }

    fn zero() -> handles::Counter {
        handles::Counter::new(Counter(Cell::new(0)))
    }
}

impl handles::Guest for Calc {
    type Counter = Counter;

    fn make(start: u32) -> handles::Counter {
        handles::Counter::new(Counter(Cell::new(start)))
    }

    fn make_some(start: u32) -> Option<handles::Counter> {
        Some(Self::make(start))
    }
}

export!(Calc);
