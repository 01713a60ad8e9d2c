#pragma once
// A data-only pickle interpreter for the subset torch.save writes (protocol 2), FORMATS.md §5.2.
// It is a symbolic stack machine: GLOBAL pushes a symbol looked up in a closed table (nothing is
// imported), REDUCE/NEWOBJ/BUILD on a known symbol build a data node, anything else is a
// FormatError naming the symbol and its offset. Nothing from the file is ever executed.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "gradstyle/io/file.hpp"
#include "gradstyle/io/py_value.hpp"

namespace gradstyle::io {

struct PickleLimits {
  uint32_t max_depth = 1000;          // container nesting and MARK nesting
  size_t max_stack = 10'000'000;      // value stack entries
  size_t max_memo = 10'000'000;       // memo entries
  // Tree size counting shared nodes once per use: bounds any recursive walk (flatten, repr) of
  // a pickle that shares one subtree many times (t = (t, t) repeated grows 2^n).
  uint64_t max_weight = 1'000'000;
  size_t max_global_len = 256;        // GLOBAL module / name line length
};

// How BINPERSID tuples look: 5-tuples in the zip format, 6-tuples (with view metadata) in the
// legacy format.
enum class PersistentIdStyle { Zip, Legacy };

struct PickleResult {
  PyValuePtr value;
  size_t end = 0;  // offset just past STOP
  std::vector<std::shared_ptr<TensorRef>> tensors;    // every tensor built, in order
  std::vector<std::shared_ptr<StorageRef>> storages;  // one per distinct key
  std::vector<std::string> globals;                   // distinct globals referenced
};

// Runs one pickle starting at data[start]. `name` is the file name and `what` the record
// ("data.pkl") used in messages. Throws FormatError for anything malformed or refused.
PickleResult unpickle(ByteSpan data, size_t start, const std::string& name, const std::string& what,
                      PersistentIdStyle style, const PickleLimits& limits = {});

}  // namespace gradstyle::io
