#include "gradstyle/io/py_value.hpp"

#include <cstdio>

#include "gradstyle/core/error.hpp"

namespace gradstyle::io {

const char* py_kind_name(PyKind k) {
  switch (k) {
    case PyKind::None: return "None";
    case PyKind::Bool: return "bool";
    case PyKind::Int: return "int";
    case PyKind::Float: return "float";
    case PyKind::String: return "str";
    case PyKind::Bytes: return "bytes";
    case PyKind::List: return "list";
    case PyKind::Tuple: return "tuple";
    case PyKind::Dict: return "dict";
    case PyKind::Tensor: return "tensor";
    case PyKind::Object: return "object";
    case PyKind::Storage: return "storage";
    case PyKind::Global: return "global";
  }
  return "?";
}

PyValuePtr PyValue::make(PyKind k) {
  auto v = std::make_shared<PyValue>();
  v->kind = k;
  return v;
}

PyValuePtr PyValue::make_int(int64_t x) {
  auto v = make(PyKind::Int);
  v->i = x;
  return v;
}

PyValuePtr PyValue::make_string(std::string x) {
  auto v = make(PyKind::String);
  v->s = std::move(x);
  return v;
}

bool PyValue::key_code(const PyValue& key, std::string* out) {
  if (key.kind == PyKind::String) {
    *out = "s:" + key.s;
    return true;
  }
  if (key.kind == PyKind::Int) {
    *out = "i:" + std::to_string(key.i);
    return true;
  }
  return false;
}

const PyValue* PyValue::get(std::string_view key) const {
  if (kind != PyKind::Dict) return nullptr;
  auto it = index.find("s:" + std::string(key));
  if (it == index.end()) return nullptr;
  return entries[it->second].second.get();
}

const RawTensor& PyValue::as_tensor() const {
  if (kind != PyKind::Tensor || !tensor) throw ValueError(std::string("expected a tensor, found ") + py_kind_name(kind));
  if (!tensor->materialized) throw ValueError("tensor data was not loaded");
  return tensor->value;
}

namespace {

void repr_into(const PyValue& v, std::string& out, size_t max_chars) {
  if (out.size() > max_chars) return;
  char buf[64];
  switch (v.kind) {
    case PyKind::None: out += "None"; break;
    case PyKind::Bool: out += v.b ? "True" : "False"; break;
    case PyKind::Int: out += std::to_string(v.i); break;
    case PyKind::Float: std::snprintf(buf, sizeof buf, "%.17g", v.f); out += buf; break;
    case PyKind::String:
      out += '\'';
      out.append(v.s, 0, max_chars);
      out += '\'';
      break;
    case PyKind::Bytes: out += "b<" + std::to_string(v.s.size()) + " bytes>"; break;
    case PyKind::List:
    case PyKind::Tuple: {
      out += v.kind == PyKind::List ? "[" : "(";
      for (size_t k = 0; k < v.items.size() && out.size() <= max_chars; ++k) {
        if (k) out += ", ";
        repr_into(*v.items[k], out, max_chars);
      }
      out += v.kind == PyKind::List ? "]" : ")";
      break;
    }
    case PyKind::Dict: {
      out += "{";
      for (size_t k = 0; k < v.entries.size() && out.size() <= max_chars; ++k) {
        if (k) out += ", ";
        repr_into(*v.entries[k].first, out, max_chars);
        out += ": ";
        repr_into(*v.entries[k].second, out, max_chars);
      }
      out += "}";
      break;
    }
    case PyKind::Tensor: {
      out += "tensor ";
      if (v.tensor && v.tensor->storage) out += dtype_name(v.tensor->storage->dtype);
      out += "[";
      if (v.tensor)
        for (size_t k = 0; k < v.tensor->size.size(); ++k) {
          if (k) out += ',';
          out += std::to_string(v.tensor->size[k]);
        }
      out += "]";
      break;
    }
    case PyKind::Object: out += "<" + v.s + ">"; break;
    case PyKind::Storage: out += "<storage " + (v.storage ? v.storage->key : std::string()) + ">"; break;
    case PyKind::Global: out += "<global " + v.s + ">"; break;
  }
}

void flatten_into(const PyValue& v, const std::string& prefix,
                  std::vector<std::pair<std::string, const RawTensor*>>& out) {
  auto join = [&](const std::string& k) { return prefix.empty() ? k : prefix + "." + k; };
  if (v.kind == PyKind::Tensor) {
    out.emplace_back(prefix, &v.as_tensor());
  } else if (v.kind == PyKind::Dict) {
    for (const auto& [k, val] : v.entries) {
      std::string ks = k->kind == PyKind::String ? k->s : std::to_string(k->i);
      flatten_into(*val, join(ks), out);
    }
  } else if (v.kind == PyKind::List || v.kind == PyKind::Tuple) {
    for (size_t k = 0; k < v.items.size(); ++k) flatten_into(*v.items[k], join(std::to_string(k)), out);
  }
}

}  // namespace

std::string PyValue::repr(size_t max_chars) const {
  std::string out;
  repr_into(*this, out, max_chars);
  if (out.size() > max_chars) out = out.substr(0, max_chars) + "...";
  return out;
}

std::vector<std::pair<std::string, const RawTensor*>> flatten_tensors(const PyValue& root, const std::string& prefix) {
  std::vector<std::pair<std::string, const RawTensor*>> out;
  flatten_into(root, prefix, out);
  return out;
}

}  // namespace gradstyle::io
