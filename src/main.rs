fn main() {
    std::process::exit(offboard::run(std::env::args_os()));
}
