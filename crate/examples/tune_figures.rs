//! Draw a finished search's figures again: `cargo run --example tune_figures -- runs/tune-NAME`.
fn main() {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).expect("a search folder"));
    let records = digits::search::table::read_merged(&dir).expect("a trial table");
    for path in digits::plot::search::save_search_figures(&dir, &records).expect("figures") {
        println!("{}", path.display());
    }
}
