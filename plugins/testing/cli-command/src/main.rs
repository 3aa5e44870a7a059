//! An ordinary WASI command: it exports `wasi:cli/run`, not a gigmcp plugin world.

fn main() {
    println!("not a plugin");
}
