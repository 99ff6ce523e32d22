//! The `manus` binary.

fn main() {
    println!("manus");
}
