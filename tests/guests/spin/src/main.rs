//! Prints a line, then loops forever: only `-W timeout` or `-W fuel` stops it. With `sleep`,
//! it sleeps for an hour instead: a guest that waits, which the epoch never interrupts.
fn main() {
    if std::env::args().nth(1).as_deref() == Some("sleep") {
        println!("sleeping");
        std::thread::sleep(std::time::Duration::from_secs(3600));
        return;
    }
    println!("spinning");
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}
