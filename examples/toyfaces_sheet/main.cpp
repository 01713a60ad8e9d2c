// Contact sheet of toyfaces: one row per identity, columns = a few ground-truth edits.
//   toyfaces_sheet OUT.png [SEED] [SIZE] [FIRST_INDEX] [ROWS]
#include <cstdio>
#include <string>
#include <vector>

#include "gradstyle/data/toyfaces.hpp"
#include "gradstyle/io/image.hpp"

namespace tf = gradstyle::data::toyfaces;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: toyfaces_sheet OUT.png [SEED] [SIZE] [FIRST_INDEX] [ROWS]\n");
    return 2;
  }
  const uint64_t seed = argc > 2 ? std::stoull(argv[2]) : 0;
  const int size = argc > 3 ? std::stoi(argv[3]) : 64;
  const uint64_t first = argc > 4 ? std::stoull(argv[4]) : 0;
  const uint64_t n_rows = argc > 5 ? std::stoull(argv[5]) : 16;
  // Columns: neutral, yaw -1, yaw +1, smile +1, smile -1, eyes closed, eyes wide, age 1.
  std::vector<tf::ToyEdit> edits(8);
  edits[1].yaw = -1;
  edits[2].yaw = 1;
  edits[3].smile = 1;
  edits[4].smile = -1;
  edits[5].eye_openness = 0;
  edits[6].eye_openness = 1;
  edits[7].age = 1;
  std::vector<std::vector<gradstyle::io::Image>> rows;
  for (uint64_t i = first; i < first + n_rows; ++i) {
    const tf::ToyIdentity id = tf::sample_identity(seed, i);
    std::vector<gradstyle::io::Image> row;
    for (const tf::ToyEdit& e : edits) row.push_back(tf::render_image(id, e, size));
    rows.push_back(std::move(row));
  }
  gradstyle::io::save_image_grid(argv[1], rows, 2, 255);
  std::printf("wrote %s (%zu identities x %zu edits, %d px)\n", argv[1], rows.size(), edits.size(), size);
  return 0;
}
