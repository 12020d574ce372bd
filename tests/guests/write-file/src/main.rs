//! Writes its second argument into the file named by its first; on failure reports and exits 1.
fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().unwrap_or_else(|| "/out/output.txt".into());
    let text = args.next().unwrap_or_else(|| "written by a guest\n".into());
    if let Err(e) = std::fs::write(&path, text) {
        eprintln!("cannot write {path}: {e}");
        std::process::exit(1);
    }
    println!("wrote {path}");
}
