#[test]
fn probe() {
    let path = std::env::var("PROBE").unwrap();
    let s = ssesim_scenarios::load_file(std::path::Path::new(&path)).unwrap();
    let params = ssesim_model::revisions::preset("baseline").unwrap();
    let r = ssesim_sim::turmoil::run(&s, &params, s.seed);
    print!("{}", r.history.to_jsonl());
}
