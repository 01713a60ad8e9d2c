#pragma once
// gradstyle toyfaces: writes procedural faces with ground truth (docs/toyfaces.md) as PNGs plus
// labels.jsonl. The command-line wiring lives in main.cpp; tests call run_toyfaces directly.
#include <cstdint>
#include <iosfwd>
#include <string>

namespace gradstyle::cli {

struct ToyfacesArgs {
  int64_t n = 0;         // identities to write (--n)
  int size = 64;         // pixels per side (--size), >= 16
  uint64_t seed = 0;     // identity stream (--seed)
  std::string out;       // output directory (--out)
  bool overwrite = false;  // allow an existing non-empty --out
  uint64_t start = 0;      // first identity number (--start)
  bool heldout = false;    // draw from the held-out range (index = kHeldoutBegin + start + i)
  bool neutral = false;    // base edit = the neutral edit instead of sample_edit(seed, index)
  // Ground-truth edit sweep: render every identity at each value of one attribute (yaw, smile,
  // eye_openness, age), the other attributes kept at the base edit. Values: comma-separated
  // list, or empty for 5 evenly spaced values over the attribute's range.
  std::string edit_sweep;
  std::string sweep_values;
};

// Writes OUT/00000.png ... (or OUT/00000_s0.png ... per sweep value) and OUT/labels.jsonl with one
// JSON object per image: file, index, heldout, seed, size, sweep (attr, step, value) when
// sweeping, identity and edit. A one-line summary goes to `out`, progress to `err`. UsageError on
// bad arguments or an existing non-empty OUT without overwrite. Returns the exit code (0).
int run_toyfaces(const ToyfacesArgs& a, std::ostream& out, std::ostream& err);

// Help text for the subcommand (options and example).
extern const char* const kToyfacesHelp;

}  // namespace gradstyle::cli
