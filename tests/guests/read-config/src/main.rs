//! A command that prints the wasi:config variable named by its first argument and the
//! wasi:keyvalue entry (in the store `""`) named by its second (`greeting` and `colour` without
//! arguments): `config K=V`, `keyvalue K=V`, with `<none>` for a missing one.
wit_bindgen::generate!({ path: "wit", world: "read-config", generate_all });

use wasi::config::store as config;
use wasi::keyvalue::store as keyvalue;

fn main() {
    let mut args = std::env::args().skip(1);
    let config_key = args.next().unwrap_or_else(|| "greeting".into());
    let kv_key = args.next().unwrap_or_else(|| "colour".into());
    let value = config::get(&config_key).expect("wasi:config answers");
    println!("config {config_key}={}", value.as_deref().unwrap_or("<none>"));
    let bucket = keyvalue::open("").expect("the default store opens");
    let value = bucket.get(&kv_key).expect("wasi:keyvalue answers");
    let value = value.map(|v| String::from_utf8_lossy(&v).into_owned());
    println!("keyvalue {kv_key}={}", value.as_deref().unwrap_or("<none>"));
}
