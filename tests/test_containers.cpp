// Tests for nn::ModuleList (nn/module_list.hpp): PyTorch's semantics — append/push_back,
// size, indexing (with a typed at<T>), iteration, the names "0", "1", ... in named_parameters
// and state_dicts (and so in saved files), train/eval reaching the elements, printing, no
// forward of its own, and errors for null modules and bad indices.

#include <doctest/doctest.h>

#include <sstream>
#include <string>
#include <vector>

#include <nanotorch/nanotorch.hpp>

#include "support/expect.hpp"
#include "support/temp_dir.hpp"

namespace nt = nanotorch;
namespace nn = nanotorch::nn;
using nt::testing::expect_thrown;
using nt::testing::value_error_message;

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

std::vector<std::string> names(const std::vector<std::pair<std::string, nt::Tensor>>& entries) {
    std::vector<std::string> out;
    for (auto& e : entries) out.push_back(e.first);
    return out;
}

// class Stack(nn.Module):
//     def __init__(self):
//         self.layers = nn.ModuleList([nn.Linear(4, 4) for _ in range(3)])
//     def forward(self, x):
//         for layer in self.layers: x = F.relu(layer(x))
struct Stack : nn::Module {
    nn::ModuleList layers{nullptr};
    Stack() {
        layers = register_module("layers", nn::ModuleList());
        for (int i = 0; i < 3; ++i) layers->append(nn::Linear(4, 4));
    }
    nt::Tensor forward(const nt::Tensor& x) override {
        nt::Tensor h = x;
        for (const auto& layer : *layers) h = nt::F::relu(layer->forward(h));
        return h;
    }
};

}  // namespace

TEST_CASE("ModuleList: append, size, indexing, iteration in order") {
    nn::Linear a(2, 3), b(3, 1);
    nn::ModuleList list(a, nn::ReLU());
    CHECK(list->size() == 2);
    list->append(b);
    REQUIRE(list->size() == 3);
    CHECK((*list)[0] == a.ptr());
    CHECK((*list)[2] == b.ptr());
    CHECK(list->at<nn::LinearImpl>(2)->weight.shape() == nt::Shape{1, 3});
    std::vector<std::string> types;
    for (const auto& m : *list) types.push_back(m->type_name());
    CHECK(types == std::vector<std::string>{"Linear", "ReLU", "Linear"});

    nn::ModuleList more(nn::Linear(1, 1));
    list->extend(*more);
    CHECK(list->size() == 4);
    CHECK((*list)[3] == (*more)[0]);  // shared, as Python's extend shares the modules
    CHECK(nn::ModuleList()->is_empty());
}

TEST_CASE("ModuleList names its elements 0, 1, ... in parameters and state_dict, and round-trips a file") {
    nt::manual_seed(3);
    Stack net;
    CHECK(names(net.named_parameters()) ==
          std::vector<std::string>{"layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias",
                                   "layers.2.weight", "layers.2.bias"});
    CHECK(names(nn::state_dict(net)) == names(net.named_parameters()));

    const nt::Tensor x = nt::randn({2, 4});
    const std::vector<float> before = net.forward(x).to_vector();
    nt::testing::TempDir dir;
    const std::string path = dir.file("stack.ntsd");
    nn::save_state_dict(net, path);
    nt::manual_seed(4);
    Stack other;
    CHECK(other.forward(x).to_vector() != before);
    nn::load_state_dict(other, path);
    CHECK(other.forward(x).to_vector() == before);  // the same weights give bit-identical outputs
}

TEST_CASE("ModuleList: train/eval reach the elements; printing; no forward of its own") {
    Stack net;
    net.eval();
    for (const auto& m : *net.layers) CHECK_FALSE(m->is_training());
    net.train();
    for (const auto& m : *net.layers) CHECK(m->is_training());

    std::ostringstream os;
    os << *nn::ModuleList(nn::ReLU());
    CHECK(os.str() == "ModuleList(\n  (0): ReLU()\n)");

    const auto e = expect_thrown([&] { net.layers->forward(nt::zeros({1, 4})); }, nt::unsupported_error("unreachable"));
    CHECK(contains(e.what(), "ModuleList does not define forward"));
}

TEST_CASE("ModuleList errors: null modules, empty holders, bad indices, wrong types") {
    nn::ModuleList list;
    CHECK(contains(value_error_message([&] { list->append(std::shared_ptr<nn::LinearImpl>()); }), "null"));
    CHECK(contains(value_error_message([&] { list->append(nn::Linear(nullptr)); }), "null"));
    list->append(nn::ReLU());
    CHECK(contains(value_error_message([&] { (void)(*list)[1]; }), "index 1 out of range for 1"));
    CHECK(contains(value_error_message([&] { (void)list->at<nn::LinearImpl>(0); }), "is a ReLU"));
    CHECK(list->size() == 1);  // failed appends left nothing behind
}
