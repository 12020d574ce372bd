//! Prints a line, then loops forever: only `-W timeout` or `-W fuel` stops it.
fn main() {
    println!("spinning");
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}
