// The README's first example, compiled by CI so the README cannot drift from the API:
// tensors, autograd and one optimisation step.
#include <nanotorch/nanotorch.hpp>

#include <iostream>

using namespace nanotorch;

int main() {
    manual_seed(0);
    Tensor x = randn({4, 3});                 // a batch of 4 inputs
    std::vector<std::int64_t> y = {0, 2, 1, 2};  // their classes

    nn::Linear fc(3, 3);                      // PyTorch's default initialisation
    optim::SGD opt(fc->parameters(), optim::SGDOptions(0.1).momentum(0.9));

    for (int step = 0; step < 3; ++step) {
        opt.zero_grad();
        Tensor loss = F::cross_entropy(fc(x), y);  // fused log_softmax + nll, mean over the batch
        loss.backward();                           // reverse-mode autograd
        opt.step();
        std::cout << "step " << step << " loss " << loss.item() << '\n';
    }
    std::cout << fc->weight.grad() << '\n';   // tensor([[...]], shape=[3, 3])
}
