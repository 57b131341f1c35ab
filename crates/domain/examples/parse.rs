//! Parses a use-case file and prints the outcome (a developer aid).
#![allow(clippy::print_stdout, clippy::print_stderr)]
fn main() {
    let path = std::env::args().nth(1).unwrap_or_default();
    let src = std::fs::read_to_string(&path).unwrap_or_default();
    match offerloop_domain::config::parse_use_case(&src, &path) {
        Ok(uc) => println!(
            "ok: {} {} actions={} count={}",
            uc.name,
            uc.kind,
            uc.actions.size(),
            uc.actions.count()
        ),
        Err(offerloop_domain::Error::Config(d)) => {
            for x in d.iter() {
                println!("{}", x.render(&src));
            }
        }
        Err(e) => println!("{e}"),
    }
}
