// io <-> Tensor bridge: checkpoints to named Tensors, images to [-1,1] NCHW and back.
#include "gradstyle/io/safetensors.hpp"
#include "gradstyle/io/tensor_bridge.hpp"
#include "io_test_util.hpp"

using namespace iotest;

TEST_CASE("io: load_state_dict_tensors from .pt (sub-dict), safetensors and npz") {
  auto g = load_state_dict_tensors(fixture("stylegan2_like.pt"), {.key = "g_ema"});
  const auto& want = expected()["pt"]["stylegan2_like.pt"];
  CHECK(g.size() == 10);
  for (const auto& [n, t] : g) {
    INFO("tensor ", n);
    const auto& e = want["g_ema." + n];
    CHECK(t.shape() == e["shape"].get<std::vector<int64_t>>());
    CHECK(t.dtype() == DType::f32);
    std::vector<float> v = t.to_vector<float>();
    REQUIRE(v.size() == e["values"].size());
    for (size_t i = 0; i < v.size(); ++i) CHECK(double(v[i]) == e["values"][i].get<double>());
  }
  auto all = load_state_dict_tensors(fixture("stylegan2_like.pt"));
  CHECK(all.count("latent_avg") == 1);
  CHECK(all.count("d.final_linear.1.bias") == 1);
  // Half storages widen to float32 by default, or stay float16 when asked.
  auto h = load_state_dict_tensors(fixture("half.pt"));
  CHECK(h.at("w16").dtype() == DType::f32);
  auto h16 = load_state_dict_tensors(fixture("half.pt"), {.float16_to_float32 = false});
  CHECK(h16.at("w16").dtype() == DType::f16);
  CHECK(h16.at("b16").dtype() == DType::bf16);
  auto st = load_state_dict_tensors(fixture("fixture.safetensors"));
  CHECK(st.at("w").shape() == std::vector<int64_t>{2, 3});
  CHECK(st.at("idx").to_vector<int64_t>()[2] == (int64_t(1) << 50));
  auto nz = load_state_dict_tensors(fixture("latents_compressed.npz"));
  CHECK(nz.at("w").shape() == std::vector<int64_t>{1, 4, 8});
  auto e4e = load_state_dict_tensors(fixture("e4e_like.pt"), {.key = "state_dict"});
  CHECK(e4e.count("encoder.input_layer.0.weight") == 1);
  expect_error<FormatError>([&] { load_state_dict_tensors(fixture("e4e_like.pt"), {.key = "nope"}); }, "e4e_like.pt",
                            {"no entry 'nope'", "'state_dict'"});
  expect_error<FormatError>([&] { load_state_dict_tensors(fixture("rgb.png")); }, "rgb.png", {"PNG image"});
}

TEST_CASE("io: RawTensor <-> Tensor and image <-> tensor round trips") {
  RawTensor r = raw_from_floats({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor t = to_tensor(r);
  CHECK(t.shape() == std::vector<int64_t>{2, 3});
  RawTensor back = from_tensor(t.transpose(0, 1));  // non-contiguous view -> contiguous copy
  CHECK(back.shape == std::vector<int64_t>{3, 2});
  CHECK(back.to_float32() == std::vector<float>{1, 4, 2, 5, 3, 6});
  Image im = load_image(fixture("rgb.png"));
  Tensor x = image_to_tensor(im);
  CHECK(x.shape() == std::vector<int64_t>{1, 3, 23, 37});
  std::vector<float> v = x.to_vector<float>();
  CHECK(v[0] == (float(im.at(0, 0, 0)) / 255.0f - 0.5f) / 0.5f);
  CHECK(v[23 * 37] == (float(im.at(0, 0, 1)) / 255.0f - 0.5f) / 0.5f);
  CHECK(tensor_to_image(x).pixels == im.pixels);
  CHECK(tensor_to_image(x.squeeze(0)).pixels == im.pixels);
  expect_error<ShapeError>([&] { tensor_to_image(Tensor::zeros({1, 2, 4, 4})); }, "tensor_to_image", {"expected [N, 1|3"});
}
