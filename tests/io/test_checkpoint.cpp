// io::open_checkpoint: the one decision of what a weights file is, and what it returns per kind.
#include "gradstyle/io/checkpoint.hpp"
#include "gradstyle/io/npy.hpp"
#include "gradstyle/io/safetensors.hpp"
#include "gradstyle/io/zip.hpp"
#include "io_test_util.hpp"

using namespace iotest;

TEST_CASE("io: open_checkpoint detects every kind from the bytes and returns its tensors") {
  struct Case {
    const char* file;
    CheckpointKind kind;
    bool tree;
  };
  for (const Case& c : {Case{"state_dict.pt", CheckpointKind::PtZip, true}, Case{"legacy.pt", CheckpointKind::PtLegacy, true},
                        Case{"fixture.safetensors", CheckpointKind::Safetensors, false},
                        Case{"latents_compressed.npz", CheckpointKind::Npz, false},
                        Case{"scalar.npy", CheckpointKind::Npy, false}}) {
    INFO("fixture ", c.file);
    Checkpoint ck = open_checkpoint(fixture(c.file));
    CHECK(ck.kind == c.kind);
    CHECK(bool(ck.tree) == c.tree);
    CHECK(ck.is_pt() == c.tree);
    REQUIRE(!ck.tensors.empty());
    // Moving the checkpoint keeps the tensor views valid (they point into what it owns).
    Checkpoint moved = std::move(ck);
    for (const auto& [n, t] : moved.tensors) CHECK(t->nbytes() == size_t(t->numel()) * dtype_size(t->dtype));
  }
  // The same tensors, in the same order, as the format's own reader gives.
  Checkpoint npz = open_checkpoint(fixture("latents_compressed.npz"));
  NamedTensors direct = load_npz(fixture("latents_compressed.npz"));
  REQUIRE(npz.tensors.size() == direct.size());
  for (size_t i = 0; i < direct.size(); ++i) {
    CHECK(npz.tensors[i].first == direct[i].first);
    CHECK(npz.tensors[i].second->data == direct[i].second.data);
  }
  Checkpoint st = open_checkpoint(fixture("fixture.safetensors"));
  CHECK(st.tensors.size() == SafetensorsFile(fixture("fixture.safetensors")).tensors().size());
  Checkpoint npy = open_checkpoint(fixture("scalar.npy"));
  REQUIRE(npy.tensors.size() == 1);
  CHECK(npy.tensors[0].first == "array");
}

TEST_CASE("io: open_checkpoint names what a non-checkpoint is; a zip is .npz only when all members are .npy") {
  expect_error<FormatError>([] { open_checkpoint(fixture("rgb.png")); }, "rgb.png", {"PNG image"});
  TempDir d;
  auto write_zip = [&](const std::string& name, const std::vector<std::string>& members) {
    ZipWriter zw;
    std::vector<uint8_t> npy = serialize_npy(raw_from_floats({2}, {1.f, 2.f}));
    for (const auto& m : members) zw.add(m, ByteSpan(npy.data(), npy.size()));
    write_bytes(d.file(name), zw.finish());
    return d.file(name);
  };
  CHECK(open_checkpoint(write_zip("two.npz", {"a.npy", "b.npy"})).kind == CheckpointKind::Npz);
  // One member that is not .npy: read as a PyTorch zip, whose reader says what is missing.
  expect_error<FormatError>([&] { open_checkpoint(write_zip("mixed.zip", {"a.npy", "notes.txt"})); }, "mixed.zip",
                            {"not a checkpoint"});
}
