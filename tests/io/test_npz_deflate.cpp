// .npz files written by numpy.savez_compressed (tools/reference/make_npz_fixtures.py): every array
// of every file must load exactly, and a deflated member that lies about its size is refused.
#include <cstring>
#include <filesystem>

#include "gradstyle/io/npy.hpp"
#include "gradstyle/io/zip.hpp"
#include "io_test_util.hpp"

using namespace iotest;
namespace fs = std::filesystem;

namespace {

std::string deflate_dir() { return fixture("npz_deflate/"); }

const nlohmann::ordered_json& manifest() {
  static const nlohmann::ordered_json j = [] {
    std::ifstream f(deflate_dir() + "manifest.json");
    REQUIRE_MESSAGE(f.good(), "missing tests/golden/io/npz_deflate/manifest.json; run tools/reference/make_npz_fixtures.py");
    return nlohmann::ordered_json::parse(f);
  }();
  return j;
}

uint32_t rd32(const uint8_t* p) { return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24; }

// Offset of the first central-directory header (from the end-of-central-directory record).
size_t central_header(const std::vector<uint8_t>& z) {
  for (size_t i = z.size() - 22 + 1; i-- > 0;)
    if (std::memcmp(&z[i], "PK\x05\x06", 4) == 0) return rd32(&z[i + 16]);
  FAIL("no end-of-central-directory record");
  return 0;
}

// A manifest value (number or bool) as the double RawTensor::get returns.
double jnum(const nlohmann::ordered_json& v) { return v.is_boolean() ? (v.get<bool>() ? 1.0 : 0.0) : v.get<double>(); }

void wr32(uint8_t* p, uint32_t v) {
  for (int k = 0; k < 4; ++k) p[k] = uint8_t(v >> (8 * k));
}

}  // namespace

TEST_CASE("io: every numpy.savez_compressed fixture loads exactly") {
  size_t files = 0, arrays = 0;
  for (const auto& [file, want] : manifest().items()) {
    INFO("fixture ", file);
    NamedTensors got = load_npz(deflate_dir() + file);
    REQUIRE(got.size() == want.size());
    for (const auto& [name, t] : got) {
      INFO("array ", name);
      REQUIRE(want.contains(name));
      const auto& e = want[name];
      CHECK(std::string(dtype_name(t.dtype)) == e["dtype"].get<std::string>());
      CHECK(t.shape == e["shape"].get<std::vector<int64_t>>());
      CHECK(crc32(ByteSpan(t.data.data(), t.data.size())) == e["crc32"].get<uint32_t>());
      if (t.numel() > 0) {
        CHECK(t.get(0) == jnum(e["first"]));
        CHECK(t.get(t.numel() - 1) == jnum(e["last"]));
      }
      ++arrays;
    }
    ++files;
  }
  // The manifest covers the folder: a fixture without an entry (or the reverse) is a stale set.
  size_t on_disk = 0;
  for (const auto& de : fs::directory_iterator(deflate_dir())) on_disk += de.path().extension() == ".npz";
  CHECK(on_disk == files);
  CHECK(files >= 40);
  CHECK(arrays >= 60);
  // The two shapes that used to be refused.
  CHECK(manifest()["wplus_3x18x512.npz"]["w"]["shape"] == nlohmann::ordered_json::array({3, 18, 512}));
  CHECK(manifest()["vec_100.npz"]["w"]["shape"] == nlohmann::ordered_json::array({100}));
}

TEST_CASE("io: a deflated member must inflate to exactly its declared size") {
  const std::vector<uint8_t> good = read_bytes(deflate_dir() + "vec_100.npz");  // one member, w.npy
  auto parse = [](const std::vector<uint8_t>& b) { return parse_npz(ByteSpan(b.data(), b.size()), "lying.npz"); };
  REQUIRE(parse(good).size() == 1);
  const size_t cd = central_header(good);
  REQUIRE(rd32(&good[cd + 10]) % 0x10000 == 8);  // deflate
  const uint32_t csize = rd32(&good[cd + 20]), usize = rd32(&good[cd + 24]);
  REQUIRE(usize == 128 + 400);                   // .npy header + 100 float32
  {
    auto b = good;  // declares one byte less than the stream produces: never inflate past it
    wr32(&b[cd + 24], usize - 1);
    expect_error<FormatError>([&] { parse(b); }, "lying.npz", {"'w.npy'", "more than its declared size of 527"});
  }
  {
    auto b = good;  // declares more than the stream produces
    wr32(&b[cd + 24], usize + 1000);
    expect_error<FormatError>([&] { parse(b); }, "lying.npz", {"'w.npy'", "inflates to 528 bytes but declares 1528"});
  }
  {
    auto b = good;  // the stream is cut short (compressed size halved)
    wr32(&b[cd + 20], csize / 2);
    expect_error<FormatError>([&] { parse(b); }, "lying.npz", {"'w.npy'", "truncated"});
  }
  {
    auto b = good;  // a bomb's claim: far more than deflate can expand to
    wr32(&b[cd + 24], 0x7FFFFFF0u);
    expect_error<FormatError>([&] { parse(b); }, "lying.npz", {"'w.npy'", "implausible size"});
  }
}
