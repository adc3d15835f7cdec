#include "radedge/parallel.h"

#include <cstdlib>

namespace radedge {

int default_thread_count() {
  if (const char* env = std::getenv("RADEDGE_NUM_THREADS")) {
    const int n = std::atoi(env);
    if (n > 0) return n;
  }
  const unsigned hw = std::thread::hardware_concurrency();
  return hw > 0 ? static_cast<int>(hw) : 1;
}

}  // namespace radedge
