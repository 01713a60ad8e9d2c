// gradstyle: command-line entry point (FORMATS.md §13.2). Exit codes: 0 success, 1 runtime
// failure (one "error: ..." line), 2 usage error (the message and the usage line). The
// subcommands come from the table in command.hpp; nothing here names one of them.
#include <CLI/CLI.hpp>
#include <iostream>

#include "cli/command.hpp"
#include "cli/commands.hpp"
#include "gradstyle/core/error.hpp"
#include "gradstyle/core/version.hpp"

int main(int argc, char** argv) {
  using namespace gradstyle::cli;
  CLI::App app{"gradstyle: GAN inversion with GradStyle (C++/CUDA, no deep-learning framework)", "gradstyle"};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "Print help for every subcommand");
  app.set_version_flag("--version", [] { return gradstyle::build_summary(); },
                       "Print the version, git revision and build options (CUDA, dlib, CPU ISA)");

  auto table = command_table();
  std::vector<CLI::App*> subs;
  std::string names;
  for (auto& c : table) {
    CLI::App* sub = app.add_subcommand(c->name(), c->summary());
    c->add_options(*sub);
    subs.push_back(sub);
    names += (names.empty() ? "" : ",") + c->name();
  }
  // The parsed subcommand's entry, or -1 when none was reached.
  auto chosen = [&]() -> int {
    for (size_t i = 0; i < subs.size(); ++i)
      if (subs[i]->parsed()) return int(i);
    return -1;
  };
  auto usage_error = [&](const char* what, int i) {
    std::cerr << "error: " << what << "\n"
              << (i >= 0 ? table[size_t(i)]->usage() : "usage: gradstyle {" + names + "} ...")
              << "  (--help for the options)\n";
    return 2;
  };

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion&) {
    std::cout << gradstyle::build_summary();
    return 0;
  } catch (const CLI::ParseError& e) {
    return usage_error(e.what(), chosen());
  }
  const int i = chosen();
  try {
    return table[size_t(i)]->run(std::cout, std::cerr);
  } catch (const UsageError& e) {
    return usage_error(e.what(), i);
  } catch (const gradstyle::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
