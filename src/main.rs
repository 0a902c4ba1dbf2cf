fn main() {
    let path = std::env::args().nth(1).unwrap();
    let s = ssesim_scenarios::load_file(std::path::Path::new(&path)).unwrap();
    let p = ssesim_model::revisions::preset(&s.revision).unwrap();
    let r = ssesim_sim::turmoil::run(&s, &p, s.seed);
    print!("{}", r.history.to_jsonl());
    eprintln!("{:?}", r.stats);
}
