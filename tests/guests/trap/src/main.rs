//! Prints a line, then executes `unreachable` from a named function, so the backtrace names it.
#[inline(never)]
fn fall_into_the_abyss() -> ! {
    core::arch::wasm32::unreachable()
}

fn main() {
    println!("about to trap");
    fall_into_the_abyss();
}
