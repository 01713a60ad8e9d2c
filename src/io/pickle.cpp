// Data-only unpickler (FORMATS.md §5.2). Iterative, bounds-checked, closed global table.
#include "gradstyle/io/pickle.hpp"

#include <cstring>
#include <unordered_map>
#include <unordered_set>

#include "checked.hpp"

namespace gradstyle::io {
namespace {

using detail::fail;

const char* opcode_name(uint8_t op) {
  switch (op) {
    case '(': return "MARK"; case '.': return "STOP"; case '0': return "POP"; case '1': return "POP_MARK";
    case '2': return "DUP"; case 'F': return "FLOAT"; case 'I': return "INT"; case 'J': return "BININT";
    case 'K': return "BININT1"; case 'L': return "LONG"; case 'M': return "BININT2"; case 'N': return "NONE";
    case 'P': return "PERSID"; case 'Q': return "BINPERSID"; case 'R': return "REDUCE"; case 'S': return "STRING";
    case 'T': return "BINSTRING"; case 'U': return "SHORT_BINSTRING"; case 'V': return "UNICODE";
    case 'X': return "BINUNICODE"; case 'a': return "APPEND"; case 'b': return "BUILD"; case 'c': return "GLOBAL";
    case 'd': return "DICT"; case '}': return "EMPTY_DICT"; case 'e': return "APPENDS"; case 'g': return "GET";
    case 'h': return "BINGET"; case 'i': return "INST"; case 'j': return "LONG_BINGET"; case 'l': return "LIST";
    case ']': return "EMPTY_LIST"; case 'o': return "OBJ"; case 'p': return "PUT"; case 'q': return "BINPUT";
    case 'r': return "LONG_BINPUT"; case 's': return "SETITEM"; case 't': return "TUPLE"; case ')': return "EMPTY_TUPLE";
    case 'u': return "SETITEMS"; case 'G': return "BINFLOAT"; case 0x80: return "PROTO"; case 0x81: return "NEWOBJ";
    case 0x82: return "EXT1"; case 0x83: return "EXT2"; case 0x84: return "EXT4"; case 0x85: return "TUPLE1";
    case 0x86: return "TUPLE2"; case 0x87: return "TUPLE3"; case 0x88: return "NEWTRUE"; case 0x89: return "NEWFALSE";
    case 0x8a: return "LONG1"; case 0x8b: return "LONG4"; case 'B': return "BINBYTES"; case 'C': return "SHORT_BINBYTES";
    case 0x8c: return "SHORT_BINUNICODE"; case 0x8d: return "BINUNICODE8"; case 0x8e: return "BINBYTES8";
    case 0x8f: return "EMPTY_SET"; case 0x90: return "ADDITEMS"; case 0x91: return "FROZENSET";
    case 0x92: return "NEWOBJ_EX"; case 0x93: return "STACK_GLOBAL"; case 0x94: return "MEMOIZE";
    case 0x95: return "FRAME"; case 0x96: return "BYTEARRAY8"; case 0x97: return "NEXT_BUFFER";
    case 0x98: return "READONLY_BUFFER";
  }
  return nullptr;
}

// The closed table of globals (FORMATS.md §5.2).
enum class Sym : int64_t {
  RebuildV2 = 1, RebuildV1, RebuildParam, RebuildParamWithState, StorageType, OrderedDict, Size, Encode, Namespace, Device
};

struct SymInfo {
  Sym sym;
  DType dtype = DType::f32;
};

bool lookup_global(const std::string& module, const std::string& name, SymInfo* out) {
  if (module == "torch._utils") {
    if (name == "_rebuild_tensor_v2") return *out = {Sym::RebuildV2}, true;
    if (name == "_rebuild_tensor") return *out = {Sym::RebuildV1}, true;
    if (name == "_rebuild_parameter") return *out = {Sym::RebuildParam}, true;
    if (name == "_rebuild_parameter_with_state") return *out = {Sym::RebuildParamWithState}, true;
    return false;
  }
  if (module == "torch") {
    static const std::pair<const char*, DType> storages[] = {
        {"FloatStorage", DType::f32}, {"DoubleStorage", DType::f64}, {"HalfStorage", DType::f16},
        {"BFloat16Storage", DType::bf16}, {"LongStorage", DType::i64}, {"IntStorage", DType::i32},
        {"ShortStorage", DType::i16}, {"CharStorage", DType::i8}, {"ByteStorage", DType::u8},
        {"BoolStorage", DType::boolean}};
    for (const auto& [n, dt] : storages)
      if (name == n) return *out = {Sym::StorageType, dt}, true;
    if (name == "Size") return *out = {Sym::Size}, true;
    if (name == "device") return *out = {Sym::Device}, true;
    return false;
  }
  if (module == "collections" && name == "OrderedDict") return *out = {Sym::OrderedDict}, true;
  if (module == "_codecs" && name == "encode") return *out = {Sym::Encode}, true;
  if (module == "argparse" && name == "Namespace") return *out = {Sym::Namespace}, true;
  return false;
}

bool valid_global_char(uint8_t c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.';
}

std::string latin1_to_utf8(const uint8_t* p, size_t n) {
  std::string s;
  s.reserve(n);
  for (size_t k = 0; k < n; ++k) {
    if (p[k] < 0x80) {
      s += char(p[k]);
    } else {
      s += char(0xC0 | (p[k] >> 6));
      s += char(0x80 | (p[k] & 0x3F));
    }
  }
  return s;
}

// True when p[0, n) is well-formed UTF-8 (no overlong forms, surrogates or code points > U+10FFFF).
bool valid_utf8(const uint8_t* p, size_t n) {
  for (size_t k = 0; k < n;) {
    uint8_t c = p[k];
    size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (len == 0 || k + len > n) return false;
    uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
    for (size_t j = 1; j < len; ++j) {
      if ((p[k + j] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[k + j] & 0x3F);
    }
    static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    k += len;
  }
  return true;
}

// A Python 2 `str` (SHORT_BINSTRING / BINSTRING). torch.load decodes these as UTF-8; bytes that
// are not UTF-8 are taken as latin-1 (pickle's encoding='latin1'), so no legacy file is refused.
std::string py2_str(const uint8_t* p, size_t n) {
  return valid_utf8(p, n) ? std::string(reinterpret_cast<const char*>(p), n) : latin1_to_utf8(p, n);
}

// UTF-8 -> latin-1 bytes; false when a code point is above 0xFF or the UTF-8 is malformed.
bool utf8_to_latin1(const std::string& in, std::string* out) {
  out->clear();
  for (size_t k = 0; k < in.size();) {
    uint8_t c = uint8_t(in[k]);
    if (c < 0x80) {
      *out += char(c);
      k += 1;
    } else if ((c & 0xE0) == 0xC0 && k + 1 < in.size() && (uint8_t(in[k + 1]) & 0xC0) == 0x80) {
      uint32_t cp = (uint32_t(c & 0x1F) << 6) | (uint8_t(in[k + 1]) & 0x3F);
      if (cp > 0xFF || cp < 0x80) return false;
      *out += char(cp);
      k += 2;
    } else {
      return false;
    }
  }
  return true;
}

class Vm {
 public:
  Vm(ByteSpan d, size_t start, const std::string& name, const std::string& what, PersistentIdStyle style,
     const PickleLimits& lim)
      : d_(d), pos_(start), name_(name), what_(what), style_(style), lim_(lim) {}

  PickleResult run();

 private:
  [[noreturn]] void error(const std::string& reason) const {
    fail(name_, err_msg("invalid pickle in ", what_, " at offset ", op_off_, ": ", reason));
  }
  const uint8_t* take(uint64_t n) {
    if (n > d_.size() - pos_)
      error(err_msg("truncated: ", opcode_name(op_) ? opcode_name(op_) : "opcode", " needs ", n, " bytes, ",
                    d_.size() - pos_, " remain"));
    const uint8_t* p = d_.data() + pos_;
    pos_ += size_t(n);
    return p;
  }
  size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }
  void push(PyValuePtr v) {
    if (stack_.size() >= lim_.max_stack) error(err_msg("value stack exceeds ", lim_.max_stack, " entries"));
    stack_.push_back(std::move(v));
  }
  PyValuePtr pop() {
    if (stack_.size() <= floor()) error(err_msg(opcode_name(op_), " on an empty stack"));
    PyValuePtr v = std::move(stack_.back());
    stack_.pop_back();
    return v;
  }
  const PyValuePtr& top() const {
    if (stack_.size() <= floor()) error(err_msg(opcode_name(op_), " on an empty stack"));
    return stack_.back();
  }
  std::vector<PyValuePtr> pop_mark() {
    if (marks_.empty()) error(err_msg(opcode_name(op_), " without a preceding MARK"));
    size_t k = marks_.back();
    marks_.pop_back();
    std::vector<PyValuePtr> items(std::make_move_iterator(stack_.begin() + ptrdiff_t(k)),
                                  std::make_move_iterator(stack_.end()));
    stack_.resize(k);
    return items;
  }

  // Makes `child` a child of `parent`: freezes it and updates the depth and size bookkeeping.
  void adopt(PyValue& parent, const PyValuePtr& child) {
    if ((child->kind == PyKind::Global || child->kind == PyKind::Storage) && parent.kind != PyKind::Tuple)
      error(err_msg(child->kind == PyKind::Global ? "global '" + child->s + "'" : std::string("a storage"),
                    " used as a value inside a ", py_kind_name(parent.kind)));
    child->frozen = true;
    if (child->height + 1 > parent.height) {
      parent.height = child->height + 1;
      if (parent.height > lim_.max_depth) error(err_msg("objects nested deeper than ", lim_.max_depth, " levels"));
    }
    if (!detail::add_ok(parent.weight, child->weight, &parent.weight) || parent.weight > lim_.max_weight)
      error(err_msg("object tree larger than ", lim_.max_weight, " nodes"));
  }
  void check_mutable(const PyValue& c) const {
    if (c.frozen)
      error(err_msg(py_kind_name(c.kind),
                    " modified after it was stored in another container (cyclic or self-referencing objects are "
                    "not supported)"));
  }
  PyValuePtr make_tuple(std::vector<PyValuePtr> items) {
    auto t = PyValue::make(PyKind::Tuple);
    for (const auto& it : items) adopt(*t, it);
    t->items = std::move(items);
    return t;
  }
  // Pickled dicts never repeat a key, so SETITEM refuses one (a crafted file); `replace` gives
  // Python's d[k] = v for a constructor argument list, which may.
  void set_item(PyValue& dict, const PyValuePtr& k, const PyValuePtr& v, bool replace = false) {
    if (dict.kind != PyKind::Dict) error(err_msg("SETITEM on a ", py_kind_name(dict.kind), ", expected a dict"));
    std::string code;
    if (!PyValue::key_code(*k, &code)) error(err_msg("dict key of type ", py_kind_name(k->kind), " (only str and int keys are supported)"));
    adopt(dict, k);
    adopt(dict, v);
    check_mutable(dict);
    auto [it, fresh] = dict.index.emplace(code, dict.entries.size());
    if (fresh) {
      dict.entries.emplace_back(k, v);
    } else if (replace) {
      dict.entries[it->second].second = v;
    } else {
      error("duplicate dict key " + k->repr(80));
    }
  }
  void append(PyValue& list, const PyValuePtr& v) {
    if (list.kind != PyKind::List) error(err_msg(opcode_name(op_), " on a ", py_kind_name(list.kind), ", expected a list"));
    adopt(list, v);
    check_mutable(list);
    list.items.push_back(v);
  }

  std::string read_line() {
    std::string s;
    while (true) {
      uint8_t c = *take(1);
      if (c == '\n') break;
      if (!valid_global_char(c)) error("GLOBAL name contains an invalid character");
      if (s.size() >= lim_.max_global_len) error(err_msg("GLOBAL name longer than ", lim_.max_global_len, " characters"));
      s += char(c);
    }
    if (s.empty()) error("empty GLOBAL name");
    return s;
  }

  void do_global();
  void do_int_text();
  void do_persid();
  void do_reduce();
  void do_newobj();
  void do_build();
  PyValuePtr rebuild_tensor(const std::vector<PyValuePtr>& a, bool v2);
  void validate_tree(const PyValuePtr& root) const;

  ByteSpan d_;
  size_t pos_;
  const std::string& name_;
  const std::string& what_;
  PersistentIdStyle style_;
  PickleLimits lim_;
  size_t op_off_ = 0;
  uint8_t op_ = 0;
  std::vector<PyValuePtr> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint32_t, PyValuePtr> memo_;
  std::unordered_map<std::string, std::shared_ptr<StorageRef>> by_key_, by_view_;
  std::unordered_set<std::string> globals_seen_;
  PickleResult res_;
};

void Vm::do_global() {
  std::string module = read_line();
  std::string name = read_line();
  std::string full = module + "." + name;
  if (globals_seen_.insert(full).second) res_.globals.push_back(full);
  SymInfo info{};
  if (!lookup_global(module, name, &info)) {
    std::string first = module.substr(0, module.find('.'));
    std::string hint = "only tensors, containers, strings and numbers are supported — convert the file in Python first";
    if (first == "torch_utils" || first == "dnnlib")
      hint = "this is an NVIDIA network pickle that embeds Python code; convert it with the offline converter in tools/";
    else if (full == "torch._utils._rebuild_tensor_v3" || name == "UntypedStorage")
      hint = "UntypedStorage / _rebuild_tensor_v3 files (newer PyTorch) are not supported yet";
    fail(name_, err_msg("checkpoint references Python object '", full, "' (offset ", op_off_, " in ", what_, "); ", hint));
  }
  auto g = PyValue::make(PyKind::Global);
  g->s = full;
  g->i = int64_t(info.sym);
  g->f = double(int(info.dtype));
  push(g);
}

// INT: a decimal line. Python 2 writes it for ints outside the signed 32-bit range even in binary
// protocols; "00" / "01" are False / True (protocol 0 booleans).
void Vm::do_int_text() {
  std::string s;
  while (true) {
    uint8_t c = *take(1);
    if (c == '\n') break;
    if (s.size() >= 24) error("INT line longer than 24 characters");
    s += char(c);
  }
  if (s == "00" || s == "01") {
    auto v = PyValue::make(PyKind::Bool);
    v->b = s == "01";
    push(v);
    return;
  }
  size_t k = (!s.empty() && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
  if (k == s.size()) error("INT with no digits");
  uint64_t mag = 0;
  for (size_t j = k; j < s.size(); ++j) {
    if (s[j] < '0' || s[j] > '9') error("INT line '" + s + "' is not a decimal integer");
    if (!detail::mul_ok(mag, 10, &mag) || !detail::add_ok(mag, uint64_t(s[j] - '0'), &mag))
      error("INT '" + s + "' does not fit in 64 bits");
  }
  const bool neg = s[0] == '-';
  if (mag > (neg ? uint64_t(INT64_MAX) + 1 : uint64_t(INT64_MAX))) error("INT '" + s + "' does not fit in 64 bits");
  push(PyValue::make_int(neg ? int64_t(0 - mag) : int64_t(mag)));
}

void Vm::do_persid() {
  PyValuePtr pid = pop();
  size_t want = style_ == PersistentIdStyle::Zip ? 5 : 6;
  if (pid->kind != PyKind::Tuple || pid->items.size() != want)
    error(err_msg("persistent id must be a ", want, "-tuple ('storage', type, key, location, numel",
                  want == 6 ? ", view" : "", "), found ", pid->repr(120)));
  const auto& it = pid->items;
  if (it[0]->kind != PyKind::String || it[0]->s != "storage") error("persistent id does not start with 'storage'");
  if (it[1]->kind != PyKind::Global || Sym(it[1]->i) != Sym::StorageType)
    error("persistent id storage type is not a torch.*Storage class: " + it[1]->repr(80));
  if (it[2]->kind != PyKind::String) error("storage key is not a string");
  if (it[3]->kind != PyKind::String) error("storage location is not a string");
  if (it[4]->kind != PyKind::Int || it[4]->i < 0) error("storage element count is not a non-negative int");
  DType dt = DType(int(it[1]->f));
  const std::string& key = it[2]->s;
  auto& ref = by_key_[key];
  if (!ref) {
    ref = std::make_shared<StorageRef>();
    ref->key = key;
    ref->dtype = dt;
    ref->location = it[3]->s;
    ref->numel = uint64_t(it[4]->i);
    res_.storages.push_back(ref);
  } else if (ref->dtype != dt || ref->numel != uint64_t(it[4]->i)) {
    error(err_msg("storage '", key, "' is referenced with different types or sizes (", dtype_name(ref->dtype), " x",
                  ref->numel, " vs ", dtype_name(dt), " x", it[4]->i, ")"));
  }
  std::shared_ptr<StorageRef> out = ref;
  if (want == 6 && it[5]->kind != PyKind::None) {
    const PyValue& v = *it[5];
    if (v.kind != PyKind::Tuple || v.items.size() != 3 || v.items[0]->kind != PyKind::String ||
        v.items[1]->kind != PyKind::Int || v.items[2]->kind != PyKind::Int || v.items[1]->i < 0 || v.items[2]->i < 0)
      error("storage view metadata is not (key, offset, size)");
    uint64_t off = uint64_t(v.items[1]->i), n = uint64_t(v.items[2]->i), end;
    if (!detail::add_ok(off, n, &end) || end > ref->numel)
      error(err_msg("storage view '", v.items[0]->s, "' [", off, ", +", n, ") exceeds storage '", key, "' of ", ref->numel, " elements"));
    auto& view = by_view_[v.items[0]->s];
    if (!view) {
      view = std::make_shared<StorageRef>(*ref);
      view->is_view = true;
      view->view_key = v.items[0]->s;
      view->view_offset = off;
      view->view_numel = n;
    } else if (view->key != key || view->view_offset != off || view->view_numel != n) {
      error("storage view '" + v.items[0]->s + "' is defined twice differently");
    }
    out = view;
  }
  auto node = PyValue::make(PyKind::Storage);
  node->storage = out;
  push(node);
}

PyValuePtr Vm::rebuild_tensor(const std::vector<PyValuePtr>& a, bool v2) {
  const char* fn = v2 ? "_rebuild_tensor_v2" : "_rebuild_tensor";
  if (v2 ? (a.size() != 6 && a.size() != 7) : a.size() != 4)
    error(err_msg(fn, " called with ", a.size(), " arguments"));
  if (a[0]->kind != PyKind::Storage) error(err_msg(fn, ": first argument is a ", py_kind_name(a[0]->kind), ", not a storage"));
  if (a[1]->kind != PyKind::Int || a[1]->i < 0) error(err_msg(fn, ": storage offset is not a non-negative int"));
  auto ints = [&](const PyValue& v, const char* what) {
    if (v.kind != PyKind::Tuple) error(err_msg(fn, ": ", what, " is a ", py_kind_name(v.kind), ", not a tuple"));
    if (v.items.size() > 8) error(err_msg(fn, ": rank ", v.items.size(), " exceeds 8"));
    std::vector<int64_t> out;
    for (const auto& x : v.items) {
      if (x->kind != PyKind::Int || x->i < 0) error(err_msg(fn, ": ", what, " entries must be non-negative ints"));
      out.push_back(x->i);
    }
    return out;
  };
  auto t = std::make_shared<TensorRef>();
  t->storage = a[0]->storage;
  t->storage_offset = a[1]->i;
  t->size = ints(*a[2], "size");
  t->stride = ints(*a[3], "stride");
  if (t->size.size() != t->stride.size())
    error(err_msg(fn, ": size has ", t->size.size(), " dims but stride has ", t->stride.size()));
  if (v2) {
    if (a[4]->kind != PyKind::Bool) error(err_msg(fn, ": requires_grad is not a bool"));
    t->requires_grad = a[4]->b;
    if (a[5]->kind != PyKind::Dict && a[5]->kind != PyKind::None) error(err_msg(fn, ": backward hooks must be an OrderedDict"));
    if (a[5]->kind == PyKind::Dict && !a[5]->entries.empty()) error(err_msg(fn, ": tensors with backward hooks are not supported"));
  }
  // Checked extent: offset + sum (size_i - 1) * stride_i must lie inside the storage.
  const StorageRef& st = *t->storage;
  uint64_t storage_numel = st.is_view ? st.view_numel : st.numel;
  uint64_t numel = 1, last = uint64_t(t->storage_offset);
  for (size_t k = 0; k < t->size.size(); ++k) {
    uint64_t s = uint64_t(t->size[k]);
    if (!detail::mul_ok(numel, s, &numel)) error(err_msg(fn, ": element count overflows"));
    if (s > 0) {
      uint64_t step;
      if (!detail::mul_ok(s - 1, uint64_t(t->stride[k]), &step) || !detail::add_ok(last, step, &last))
        error(err_msg(fn, ": extent overflows"));
    }
  }
  if (numel > 0 && last >= storage_numel)
    error(err_msg(fn, ": tensor of size ", RawTensor{st.dtype, t->size, {}}.shape_str(), " reaches element ", last,
                  " but storage '", st.key, "' has ", storage_numel, " elements"));
  if (numel == 0 && uint64_t(t->storage_offset) > storage_numel)
    error(err_msg(fn, ": storage offset ", t->storage_offset, " beyond storage '", st.key, "' of ", storage_numel, " elements"));
  auto node = PyValue::make(PyKind::Tensor);
  node->tensor = t;
  res_.tensors.push_back(t);
  return node;
}

void Vm::do_reduce() {
  PyValuePtr args = pop();
  PyValuePtr fn = pop();
  if (fn->kind != PyKind::Global) error(err_msg("REDUCE on a ", py_kind_name(fn->kind), "; only whitelisted globals can be called"));
  if (args->kind != PyKind::Tuple) error(err_msg("REDUCE arguments are a ", py_kind_name(args->kind), ", not a tuple"));
  const auto& a = args->items;
  PyValuePtr out;
  switch (Sym(fn->i)) {
    case Sym::RebuildV2: out = rebuild_tensor(a, true); break;
    case Sym::RebuildV1: out = rebuild_tensor(a, false); break;
    case Sym::RebuildParam:
    case Sym::RebuildParamWithState: {
      // _rebuild_parameter(data, requires_grad, backward_hooks) and, for parameters with
      // attributes (torch >= 2.0), _rebuild_parameter_with_state(..., state). The hooks are an
      // OrderedDict (older files: None); hook functions would be globals and are refused there.
      const bool with_state = Sym(fn->i) == Sym::RebuildParamWithState;
      const char* what = with_state ? "_rebuild_parameter_with_state expects (tensor, requires_grad, hooks, state)"
                                    : "_rebuild_parameter expects (tensor, requires_grad, hooks)";
      if (a.size() != (with_state ? 4u : 3u) || a[0]->kind != PyKind::Tensor || a[1]->kind != PyKind::Bool ||
          (a[2]->kind != PyKind::Dict && a[2]->kind != PyKind::None))
        error(err_msg(what, ", found ", args->repr(120)));
      if (a[2]->kind == PyKind::Dict && !a[2]->entries.empty()) error("parameters with backward hooks are not supported");
      if (with_state && a[3]->kind != PyKind::Dict && a[3]->kind != PyKind::None && a[3]->kind != PyKind::Tuple)
        error(err_msg(what, ": state is a ", py_kind_name(a[3]->kind)));
      a[0]->tensor->is_parameter = true;
      a[0]->tensor->requires_grad = a[1]->b;
      out = a[0];
      break;
    }
    case Sym::OrderedDict:
      out = PyValue::make(PyKind::Dict);
      out->ordered = true;
      // OrderedDict(items): Python takes any iterable of two-element iterables; legacy (Python 2)
      // files pass a list of [key, value] lists, newer ones a list of tuples. OrderedDict(mapping)
      // copies the mapping. A repeated key keeps its first position and takes the last value.
      if (a.size() == 1 && a[0]->is_sequence()) {
        for (const auto& pair : a[0]->items) {
          if (!pair->is_sequence() || pair->items.size() != 2)
            error("OrderedDict items must be (key, value) pairs, found " + pair->repr(80));
          set_item(*out, pair->items[0], pair->items[1], /*replace=*/true);
        }
      } else if (a.size() == 1 && a[0]->kind == PyKind::Dict) {
        for (const auto& [k, v] : a[0]->entries) set_item(*out, k, v, /*replace=*/true);
      } else if (!a.empty()) {
        error("OrderedDict called with " + args->repr(80) + "; expected one list of (key, value) pairs or a dict");
      }
      break;
    case Sym::Size: {
      if (a.size() != 1 || a[0]->kind != PyKind::Tuple) error("torch.Size expects one tuple");
      for (const auto& x : a[0]->items)
        if (x->kind != PyKind::Int) error("torch.Size entries must be ints");
      out = make_tuple(a[0]->items);
      break;
    }
    case Sym::Encode: {
      if (a.size() != 2 || a[0]->kind != PyKind::String || a[1]->kind != PyKind::String ||
          (a[1]->s != "latin1" && a[1]->s != "latin-1"))
        error("_codecs.encode is only accepted as encode(str, 'latin1')");
      out = PyValue::make(PyKind::Bytes);
      if (!utf8_to_latin1(a[0]->s, &out->s)) error("_codecs.encode: string is not latin-1");
      break;
    }
    case Sym::Device: {
      if (a.empty() || a.size() > 2 || a[0]->kind != PyKind::String || (a.size() == 2 && a[1]->kind != PyKind::Int))
        error("torch.device expects (type[, index])");
      out = PyValue::make_string(a.size() == 2 ? a[0]->s + ":" + std::to_string(a[1]->i) : a[0]->s);
      break;
    }
    case Sym::Namespace:
      if (!a.empty()) error("argparse.Namespace called with arguments");
      out = PyValue::make(PyKind::Object);
      out->s = fn->s;
      break;
    case Sym::StorageType:
      error("storage type '" + fn->s + "' cannot be called; it is only valid inside a persistent id");
  }
  push(out);
}

void Vm::do_newobj() {
  PyValuePtr args = pop();
  PyValuePtr cls = pop();
  if (cls->kind != PyKind::Global || Sym(cls->i) != Sym::Namespace)
    error(err_msg("NEWOBJ on ", cls->kind == PyKind::Global ? "'" + cls->s + "'" : std::string(py_kind_name(cls->kind)),
                  "; only argparse.Namespace may be instantiated (as inert data)"));
  if (args->kind != PyKind::Tuple || !args->items.empty()) error("NEWOBJ of argparse.Namespace with arguments");
  auto out = PyValue::make(PyKind::Object);
  out->s = cls->s;
  push(out);
}

void Vm::do_build() {
  PyValuePtr state = pop();
  const PyValuePtr& inst = top();
  bool empty_state = state->kind == PyKind::None || (state->kind == PyKind::Dict && state->entries.empty()) ||
                     (state->kind == PyKind::Tuple && state->items.empty());
  switch (inst->kind) {
    case PyKind::Object:
      if (state->kind != PyKind::Dict) error("BUILD state of " + inst->s + " must be a dict");
      if (inst->attrs) error("BUILD applied twice to " + inst->s);
      adopt(*inst, state);
      check_mutable(*inst);
      inst->attrs = state;
      break;
    case PyKind::Dict:
      // OrderedDict.__dict__ (state_dict()._metadata) is kept as plain data.
      if (empty_state) break;
      if (!inst->ordered || state->kind != PyKind::Dict || inst->attrs) error("BUILD on a dict with unsupported state");
      adopt(*inst, state);
      check_mutable(*inst);
      inst->attrs = state;
      break;
    case PyKind::Tensor:
      if (!empty_state) error("BUILD on a tensor with non-empty state (tensor subclasses are not supported)");
      break;
    default:
      error(err_msg("BUILD on a ", py_kind_name(inst->kind)));
  }
}

void Vm::validate_tree(const PyValuePtr& root) const {
  std::unordered_set<const PyValue*> seen;
  std::vector<const PyValue*> todo{root.get()};
  while (!todo.empty()) {
    const PyValue* v = todo.back();
    todo.pop_back();
    if (!seen.insert(v).second) continue;
    if (v->kind == PyKind::Global) error("global '" + v->s + "' left in the result; it is only valid as a callable");
    if (v->kind == PyKind::Storage) error("a bare storage in the result; only tensors are supported");
    for (const auto& c : v->items) todo.push_back(c.get());
    for (const auto& [k, c] : v->entries) todo.push_back(c.get());
    if (v->attrs) todo.push_back(v->attrs.get());
  }
}

PickleResult Vm::run() {
  if (pos_ > d_.size()) fail(name_, "pickle start beyond the end of " + what_);
  while (pos_ < d_.size()) {
    op_off_ = pos_;
    op_ = *take(1);
    switch (op_) {
      case 0x80: {
        uint8_t proto = *take(1);
        if (proto != 2) error(err_msg("pickle protocol ", int(proto), " is not supported (torch.save writes protocol 2)"));
        break;
      }
      case '(':
        if (marks_.size() >= lim_.max_depth) error(err_msg("MARKs nested deeper than ", lim_.max_depth));
        marks_.push_back(stack_.size());
        break;
      case 'c': do_global(); break;
      case 'Q': do_persid(); break;
      case 'R': do_reduce(); break;
      case 0x81: do_newobj(); break;
      case 'b': do_build(); break;
      case 'N': push(PyValue::make(PyKind::None)); break;
      case 0x88:
      case 0x89: {
        auto v = PyValue::make(PyKind::Bool);
        v->b = op_ == 0x88;
        push(v);
        break;
      }
      case 'J': push(PyValue::make_int(int32_t(detail::rd32(take(4))))); break;
      case 'K': push(PyValue::make_int(*take(1))); break;
      case 'M': push(PyValue::make_int(detail::rd16(take(2)))); break;
      case 0x8a: {
        uint8_t n = *take(1);
        if (n > 8) error(err_msg("LONG1 of ", int(n), " bytes does not fit in 64 bits"));
        const uint8_t* p = take(n);
        uint64_t v = 0;
        for (int k = 0; k < n; ++k) v |= uint64_t(p[k]) << (8 * k);
        if (n > 0 && n < 8 && (p[n - 1] & 0x80)) v |= ~uint64_t(0) << (8 * n);  // sign-extend
        int64_t sv;
        std::memcpy(&sv, &v, 8);
        push(PyValue::make_int(sv));
        break;
      }
      case 'G': {
        const uint8_t* p = take(8);
        uint64_t bits = 0;
        for (int k = 0; k < 8; ++k) bits = (bits << 8) | p[k];  // big-endian
        auto v = PyValue::make(PyKind::Float);
        std::memcpy(&v->f, &bits, 8);
        push(v);
        break;
      }
      case 'X': {
        uint32_t n = detail::rd32(take(4));
        const uint8_t* p = take(n);
        push(PyValue::make_string(std::string(reinterpret_cast<const char*>(p), n)));
        break;
      }
      case 'U': {
        uint8_t n = *take(1);
        const uint8_t* p = take(n);
        push(PyValue::make_string(py2_str(p, n)));
        break;
      }
      case 'T': {  // BINSTRING: a Python 2 str of 256 bytes or more
        int32_t n = int32_t(detail::rd32(take(4)));
        if (n < 0) error("BINSTRING with a negative length");
        const uint8_t* p = take(uint64_t(n));
        push(PyValue::make_string(py2_str(p, size_t(n))));
        break;
      }
      case 'I': do_int_text(); break;
      case ')': push(PyValue::make(PyKind::Tuple)); break;
      case 't': push(make_tuple(pop_mark())); break;
      case 0x85:
      case 0x86:
      case 0x87: {
        size_t n = size_t(op_ - 0x84);
        std::vector<PyValuePtr> items(n);
        for (size_t k = n; k-- > 0;) items[k] = pop();
        push(make_tuple(std::move(items)));
        break;
      }
      case '}': push(PyValue::make(PyKind::Dict)); break;
      case ']': push(PyValue::make(PyKind::List)); break;
      case 's': {
        PyValuePtr v = pop();
        PyValuePtr k = pop();
        set_item(*top(), k, v);
        break;
      }
      case 'u': {
        std::vector<PyValuePtr> items = pop_mark();
        if (items.size() % 2) error("SETITEMS with an odd number of items");
        const PyValuePtr& d = top();
        for (size_t k = 0; k < items.size(); k += 2) set_item(*d, items[k], items[k + 1]);
        break;
      }
      case 'a': {
        PyValuePtr v = pop();
        append(*top(), v);
        break;
      }
      case 'e': {
        std::vector<PyValuePtr> items = pop_mark();
        const PyValuePtr& l = top();
        for (const auto& v : items) append(*l, v);
        break;
      }
      case 'q':
      case 'r': {
        uint32_t idx = op_ == 'q' ? *take(1) : detail::rd32(take(4));
        const PyValuePtr& v = top();
        auto it = memo_.find(idx);
        if (it != memo_.end()) {
          it->second = v;
        } else {
          if (memo_.size() >= lim_.max_memo) error(err_msg("memo exceeds ", lim_.max_memo, " entries"));
          memo_.emplace(idx, v);
        }
        break;
      }
      case 'h':
      case 'j': {
        uint32_t idx = op_ == 'h' ? *take(1) : detail::rd32(take(4));
        auto it = memo_.find(idx);
        if (it == memo_.end()) error(err_msg("memo index ", idx, " was never stored"));
        push(it->second);
        break;
      }
      case '.': {
        PyValuePtr v = pop();
        if (!stack_.empty() || !marks_.empty()) error("STOP with values or MARKs left on the stack");
        validate_tree(v);
        res_.value = v;
        res_.end = pos_;
        return std::move(res_);
      }
      default: {
        const char* n = opcode_name(op_);
        if (n) error(err_msg("opcode ", n, " (0x", std::hex, int(op_), std::dec, ") is not supported in torch checkpoints"));
        error(err_msg("unknown opcode 0x", std::hex, int(op_), std::dec, " (not a pickle or corrupt)"));
      }
    }
  }
  op_off_ = pos_;
  fail(name_, err_msg("invalid pickle in ", what_, ": truncated, no STOP opcode before offset ", pos_));
}

}  // namespace

PickleResult unpickle(ByteSpan data, size_t start, const std::string& name, const std::string& what,
                      PersistentIdStyle style, const PickleLimits& limits) {
  Vm vm(data, start, name, what, style, limits);
  return vm.run();
}

}  // namespace gradstyle::io
