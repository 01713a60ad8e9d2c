#pragma once
// The table of `gradstyle` subcommands. Each subcommand is one Command in its own cmd_<name>.cpp
// (its options, help text, usage line and the call into the library); main.cpp only walks the
// table. Adding a subcommand: write cmd_<name>.cpp with a make_<name>_command(), add one line to
// command_table() in commands.cpp and the file to src/cli/meson.build.
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace gradstyle::cli {

class Command {
 public:
  virtual ~Command() = default;
  virtual std::string name() const = 0;
  virtual std::string summary() const = 0;  // one line in `gradstyle --help`
  // Printed after "error: ..." on a usage error (exit code 2).
  virtual std::string usage() const = 0;
  // Declares the options (bound to members) and the help footer on the subcommand.
  virtual void add_options(CLI::App& sub) = 0;
  // Runs with the parsed options; returns the exit code. Throws UsageError (exit 2) or
  // gradstyle::Error (exit 1).
  virtual int run(std::ostream& out, std::ostream& err) = 0;
};

// The subcommands in the order they are listed in help and usage texts.
std::vector<std::unique_ptr<Command>> command_table();

std::unique_ptr<Command> make_generate_command();
std::unique_ptr<Command> make_info_command();
std::unique_ptr<Command> make_align_command();
std::unique_ptr<Command> make_explain_command();
std::unique_ptr<Command> make_toyfaces_command();
std::unique_ptr<Command> make_train_command();
std::unique_ptr<Command> make_demo_command();
std::unique_ptr<Command> make_bundle_command();
std::unique_ptr<Command> make_results_command();
std::unique_ptr<Command> make_eval_command();
std::unique_ptr<Command> make_invert_command();
std::unique_ptr<Command> make_edit_command();

}  // namespace gradstyle::cli
