fn main() { let _ = iceoryx2::prelude::ServiceName::new("x"); }
