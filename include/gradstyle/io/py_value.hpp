#pragma once
// The generic tree a pickle decodes to (FORMATS.md §2.3 "Output"): None, bool, int64, double,
// string, bytes, list, tuple, ordered dict (string or int keys), tensor, opaque object. Nodes are
// shared (the pickle memo can reference one object from several places) but the tree is acyclic
// and at most PickleLimits::max_depth deep: the unpickler refuses anything else.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "gradstyle/io/raw_tensor.hpp"

namespace gradstyle::io {

enum class PyKind : uint8_t {
  None, Bool, Int, Float, String, Bytes, List, Tuple, Dict, Tensor, Object,
  Storage,  // a storage reference (only valid as a tensor argument)
  Global,   // a whitelisted global symbol (only valid as a callable or storage type tag)
};
const char* py_kind_name(PyKind k);

class PyValue;
using PyValuePtr = std::shared_ptr<PyValue>;

// Where a storage lives in the file and what it holds.
struct StorageRef {
  std::string key;       // data/<key> in a zip file; storage key in a legacy file
  DType dtype = DType::f32;
  std::string location;  // "cpu", "cuda:0", ... (informational: everything loads to host memory)
  uint64_t numel = 0;    // elements of the whole storage
  // Legacy storage views (6-tuple persistent id with view metadata): the storage is
  // elements [view_offset, view_offset + view_numel) of storage `key`.
  bool is_view = false;
  std::string view_key;
  uint64_t view_offset = 0, view_numel = 0;
};

struct TensorRef {
  std::shared_ptr<StorageRef> storage;
  int64_t storage_offset = 0;      // elements
  std::vector<int64_t> size, stride;  // elements
  bool requires_grad = false;
  bool is_parameter = false;
  RawTensor value;                 // contiguous copy, filled by the loader
  bool materialized = false;
};

class PyValue {
 public:
  PyKind kind = PyKind::None;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;                   // String/Bytes payload; Object/Global: "module.name"
  std::vector<PyValuePtr> items;   // List, Tuple
  std::vector<std::pair<PyValuePtr, PyValuePtr>> entries;  // Dict, in insertion order
  bool ordered = false;            // Dict built from collections.OrderedDict
  PyValuePtr attrs;                // Object state / OrderedDict.__dict__ (from BUILD); may be null
  std::shared_ptr<TensorRef> tensor;
  std::shared_ptr<StorageRef> storage;

  // Bookkeeping maintained by the unpickler.
  uint32_t height = 0;     // longest chain of children below this node
  uint64_t weight = 1;     // node count of the tree below, shared nodes counted per use
  bool frozen = false;     // already a child of another container: no more mutation
  std::unordered_map<std::string, size_t> index;  // Dict: encoded key -> entries position

  static PyValuePtr make(PyKind k);
  static PyValuePtr make_int(int64_t v);
  static PyValuePtr make_string(std::string v);

  bool is(PyKind k) const { return kind == k; }
  bool is_tensor() const { return kind == PyKind::Tensor; }
  bool is_dict() const { return kind == PyKind::Dict; }
  bool is_sequence() const { return kind == PyKind::List || kind == PyKind::Tuple; }

  // Dict lookup by string key; nullptr when absent or when this is not a dict.
  const PyValue* get(std::string_view key) const;
  // The materialized tensor; throws ValueError when this is not a tensor.
  const RawTensor& as_tensor() const;
  // Short Python-like rendering for messages and `inspect` ("{'a': tensor float32[2,3], ...}").
  std::string repr(size_t max_chars = 200) const;

  // Encodes a dict key for `index` ("s:<str>" / "i:<int>"); returns false for unsupported key kinds.
  static bool key_code(const PyValue& key, std::string* out);
};

// Flattens nested dicts (and lists/tuples, by index) into "a.b.c" -> tensor, in order. Non-tensor
// leaves are skipped. Tensors reached twice (shared) appear under each of their names.
std::vector<std::pair<std::string, const RawTensor*>> flatten_tensors(const PyValue& root,
                                                                       const std::string& prefix = "");

}  // namespace gradstyle::io
