//! Allocates and touches the number of MiB given as its first argument (default 64), then
//! prints how much it holds: `-W max-memory-size` below that makes the allocation fail.
fn main() {
    let mib: usize = std::env::args()
        .nth(1)
        .and_then(|arg| arg.parse().ok())
        .unwrap_or(64);
    let block = vec![1u8; mib << 20];
    println!("holding {} MiB", std::hint::black_box(block).len() >> 20);
}
