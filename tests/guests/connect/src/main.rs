//! Opens a TCP connection to the address in its first argument and writes a line on it; prints
//! "connected" or, on failure, the error on stderr and exits 1.
use std::io::Write;

fn main() {
    let addr = std::env::args().nth(1).expect("an address argument");
    match std::net::TcpStream::connect(&addr) {
        Ok(mut stream) => {
            let _ = stream.write_all(b"hello from the guest\n");
            println!("connected");
        }
        Err(e) => {
            eprintln!("cannot connect to {addr}: {e}");
            std::process::exit(1);
        }
    }
}
