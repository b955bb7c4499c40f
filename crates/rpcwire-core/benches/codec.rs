//! Criterion benches of the pure core (being written).
fn main() {}
