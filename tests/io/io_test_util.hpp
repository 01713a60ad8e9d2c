#pragma once
// Shared helpers for the io tests: fixture paths, expected.json (written by
// tools/reference/make_io_fixtures.py), temp dirs, value comparison and error assertions.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "gradstyle/core/error.hpp"
#include "gradstyle/io/file.hpp"
#include "gradstyle/io/raw_tensor.hpp"

namespace iotest {

using namespace gradstyle;
using namespace gradstyle::io;

inline std::string fixture(const std::string& name) { return std::string(GS_SOURCE_ROOT "/tests/golden/io/") + name; }

inline const nlohmann::ordered_json& expected() {
  static const nlohmann::ordered_json j = [] {
    std::ifstream f(fixture("expected.json"));
    REQUIRE_MESSAGE(f.good(), "missing tests/golden/io/expected.json; run tools/reference/make_io_fixtures.py");
    return nlohmann::ordered_json::parse(f);
  }();
  return j;
}

inline std::vector<uint8_t> read_bytes(const std::string& path) { return read_file_bytes(path); }

inline void write_bytes(const std::string& path, const std::vector<uint8_t>& b) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
}

// A fresh directory under /tmp, removed on destruction.
struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/gs_io_test_XXXXXX";
    char* p = mkdtemp(tmpl);
    REQUIRE(p != nullptr);
    path = p;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string file(const std::string& n) const { return path + "/" + n; }
};

// Compares every element (exactly) of a tensor with its expected.json entry.
inline void check_tensor(const RawTensor& t, const nlohmann::ordered_json& e, const std::string& what) {
  INFO("tensor ", what);
  CHECK(std::string(dtype_name(t.dtype)) == e["dtype"].get<std::string>());
  CHECK(t.shape == e["shape"].get<std::vector<int64_t>>());
  const auto& vals = e["values"];
  REQUIRE(uint64_t(t.numel()) == vals.size());
  REQUIRE(t.data.size() == vals.size() * dtype_size(t.dtype));
  size_t bad = 0;
  for (size_t i = 0; i < vals.size(); ++i) {
    bool ok = t.dtype == DType::i64 ? t.get_int(int64_t(i)) == vals[i].get<int64_t>()
                                    : t.get(int64_t(i)) == vals[i].get<double>();
    if (!ok && bad++ < 5) FAIL_CHECK("element ", i, " is ", t.get(int64_t(i)), ", expected ", vals[i].dump());
  }
  CHECK(bad == 0);
}

// Runs f and checks that it throws exactly type E (not just any gradstyle::Error) and that the
// message names the file and contains every keyword.
template <class E, class F>
void expect_error(F&& f, const std::string& name, const std::vector<std::string>& keywords) {
  try {
    f();
    FAIL_CHECK("no exception; expected one naming '", name, "'");
  } catch (const E& e) {
    std::string m = e.what();
    INFO("message: ", m);
    CHECK_MESSAGE(m.find(name) != std::string::npos, "message does not name the file");
    for (const auto& k : keywords) CHECK_MESSAGE(m.find(k) != std::string::npos, "missing keyword '", k, "'");
  } catch (const std::exception& e) {
    FAIL_CHECK("wrong exception type: ", e.what());
  }
}

}  // namespace iotest
