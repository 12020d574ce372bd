//! worldhost's example command component: greets the name it is given and shows what it was
//! granted, which by default is nothing.
fn main() {
    let name = std::env::args().nth(1).unwrap_or_else(|| "world".into());
    println!("Hello, {name}! I am a WebAssembly component, run by worldhost.");
    let vars = std::env::vars().count();
    let root = match std::fs::read_dir("/") {
        Ok(_) => "a directory at /",
        Err(_) => "no files",
    };
    println!("I was given {vars} environment variables and {root}.");
}
