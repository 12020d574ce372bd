//! A component that exports `wasi:cli/run` at 0.2 and at 0.3, and says which one ran.

wasip3::cli::command::export!(Both);

struct Both;

impl wasip3::exports::cli::run::Guest for Both {
    async fn run() -> Result<(), ()> {
        let (mut tx, rx) = wasip3::wit_stream::new();
        let written = wasip3::cli::stdout::write_via_stream(rx);
        let rest = tx.write_all(b"ran as WASI 0.3\n".to_vec()).await;
        assert!(rest.is_empty(), "stdout took every byte");
        drop(tx);
        written.await.map_err(|_| ())
    }
}

fn main() {
    println!("ran as WASI 0.2");
}
