// examples/svg_plots.hpp — the two pictures the training examples draw, as plain SVG text (no
// plotting dependency): training curves per epoch and a confusion-matrix heat map.
//
//   svg_plots::write_curves("out/curves.svg", history, "Fashion-MNIST, ResNet-8");
//   svg_plots::write_confusion("out/confusion.svg", confusion, class_names, "...");
//
// curves.svg has two panels: train and test loss (left), test accuracy in % (right), one point
// per epoch. confusion.svg shades each cell by its share of the row (the true class), prints the
// count, and labels rows and columns with the class names. Both throw nanotorch::io_error when
// the file cannot be written and value_error for empty or inconsistent input.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nanotorch/error.hpp>

namespace svg_plots {

struct EpochPoint {
    int epoch = 0;
    double train_loss = 0.0, test_loss = 0.0, accuracy = 0.0;  // accuracy in percent
};

namespace detail {

inline std::string num(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f", v);
    return buf;
}

inline std::string escape(const std::string& s) {
    std::string out;
    for (char c : s) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&quot;"; break;
            default: out += c;
        }
    }
    return out;
}

inline std::string text(double x, double y, const std::string& s, const char* anchor = "middle", int size = 12,
                        const std::string& extra = "") {
    return "<text x=\"" + num(x) + "\" y=\"" + num(y) + "\" font-size=\"" + std::to_string(size) +
           "\" text-anchor=\"" + anchor + "\"" + extra + ">" + escape(s) + "</text>\n";
}

inline std::string tick_label(double v) {
    char buf[32];
    const double a = std::fabs(v);
    std::snprintf(buf, sizeof buf, a >= 10 || v == 0 ? "%.0f" : a >= 1 ? "%.1f" : "%.2f", v);
    return buf;
}

/// "Nice" tick step (1, 2 or 5 times a power of ten) giving about `count` ticks over [lo, hi].
inline double nice_step(double lo, double hi, int count) {
    const double raw = (hi - lo) / std::max(count, 1);
    if (!(raw > 0)) return 1.0;
    const double p = std::pow(10.0, std::floor(std::log10(raw)));
    for (double m : {1.0, 2.0, 5.0, 10.0})
        if (raw <= m * p) return m * p;
    return 10.0 * p;
}

struct Series {
    std::string name, color;
    std::vector<double> y;
};

/// One line-chart panel at (x0, y0) of size w × h: axes, ticks, grid, the series and a legend.
inline std::string panel(double x0, double y0, double w, double h, const std::string& title,
                         const std::vector<int>& epochs, const std::vector<Series>& series) {
    double lo = 1e300, hi = -1e300;
    for (const auto& s : series)
        for (double v : s.y) {
            lo = std::min(lo, v);
            hi = std::max(hi, v);
        }
    if (hi - lo < 1e-9) {
        lo -= 0.5;
        hi += 0.5;
    }
    const double step = nice_step(lo, hi, 5);
    lo = std::floor(lo / step) * step;
    hi = std::ceil(hi / step) * step;
    const int e0 = epochs.front(), e1 = epochs.back();
    const double left = x0 + 50, right = x0 + w - 10, top = y0 + 30, bottom = y0 + h - 40;
    auto px = [&](double e) { return e1 == e0 ? (left + right) / 2 : left + (right - left) * (e - e0) / (e1 - e0); };
    auto py = [&](double v) { return bottom - (bottom - top) * (v - lo) / (hi - lo); };

    std::ostringstream os;
    os << text(x0 + w / 2, y0 + 18, title, "middle", 14, " font-weight=\"bold\"");
    for (double v = lo; v <= hi + step / 2; v += step) {
        os << "<line x1=\"" << num(left) << "\" y1=\"" << num(py(v)) << "\" x2=\"" << num(right) << "\" y2=\""
           << num(py(v)) << "\" stroke=\"#ddd\"/>\n";
        os << text(left - 6, py(v) + 4, tick_label(v), "end", 11);
    }
    const int estep = std::max(1, static_cast<int>(nice_step(e0, e1, 8)));
    for (int e = e0; e <= e1; ++e)
        if ((e - e0) % estep == 0 || e == e1) os << text(px(e), bottom + 16, std::to_string(e), "middle", 11);
    os << text((left + right) / 2, bottom + 34, "epoch", "middle", 12);
    os << "<rect x=\"" << num(left) << "\" y=\"" << num(top) << "\" width=\"" << num(right - left) << "\" height=\""
       << num(bottom - top) << "\" fill=\"none\" stroke=\"#444\"/>\n";
    for (std::size_t k = 0; k < series.size(); ++k) {
        const Series& s = series[k];
        os << "<polyline fill=\"none\" stroke=\"" << s.color << "\" stroke-width=\"2\" points=\"";
        for (std::size_t i = 0; i < s.y.size(); ++i) os << (i ? " " : "") << num(px(epochs[i])) << ',' << num(py(s.y[i]));
        os << "\"/>\n";
        for (std::size_t i = 0; i < s.y.size(); ++i)
            os << "<circle cx=\"" << num(px(epochs[i])) << "\" cy=\"" << num(py(s.y[i])) << "\" r=\"3\" fill=\""
               << s.color << "\"/>\n";
        const double ly = top + 14 + 16 * static_cast<double>(k);
        os << "<line x1=\"" << num(right - 110) << "\" y1=\"" << num(ly - 4) << "\" x2=\"" << num(right - 90)
           << "\" y2=\"" << num(ly - 4) << "\" stroke=\"" << s.color << "\" stroke-width=\"2\"/>\n";
        os << text(right - 85, ly, s.name, "start", 11);
    }
    return os.str();
}

inline void write_file(const std::string& path, const std::string& content) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    if (!f) throw nanotorch::io_error(path, "cannot open for writing");
    f << content;
    f.close();
    if (!f) throw nanotorch::io_error(path, "write failed");
}

}  // namespace detail

/// Writes curves.svg: train/test loss and test accuracy per epoch.
/// @throws value_error when history is empty; io_error when the file cannot be written.
inline void write_curves(const std::string& path, const std::vector<EpochPoint>& history, const std::string& title) {
    NANOTORCH_CHECK(!history.empty(), nanotorch::value_error, "write_curves: no epochs to draw");
    std::vector<int> epochs;
    detail::Series train{"train loss", "#1f77b4", {}}, test{"test loss", "#ff7f0e", {}}, acc{"test accuracy", "#2ca02c", {}};
    for (const auto& p : history) {
        epochs.push_back(p.epoch);
        train.y.push_back(p.train_loss);
        test.y.push_back(p.test_loss);
        acc.y.push_back(p.accuracy);
    }
    const double w = 760, h = 300;
    std::ostringstream os;
    os << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << w << "\" height=\"" << h + 30
       << "\" viewBox=\"0 0 " << w << ' ' << h + 30 << "\" font-family=\"sans-serif\">\n"
       << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
       << detail::text(w / 2, 20, title, "middle", 15, " font-weight=\"bold\"")
       << detail::panel(0, 30, w / 2, h, "loss", epochs, {train, test})
       << detail::panel(w / 2, 30, w / 2, h, "test accuracy (%)", epochs, {acc}) << "</svg>\n";
    detail::write_file(path, os.str());
}

/// Writes confusion.svg: rows are true classes, columns predictions; each cell is shaded by its
/// share of the row and shows the count.
/// @throws value_error when the matrix is empty, not square or does not match the names;
///   io_error when the file cannot be written.
inline void write_confusion(const std::string& path, const std::vector<std::vector<std::int64_t>>& confusion,
                            const std::vector<std::string>& names, const std::string& title) {
    const std::size_t n = confusion.size();
    NANOTORCH_CHECK(n > 0 && names.size() == n, nanotorch::value_error, "write_confusion: ", n, " rows but ",
                    names.size(), " class names");
    for (const auto& row : confusion)
        NANOTORCH_CHECK(row.size() == n, nanotorch::value_error, "write_confusion: the matrix is not square");
    std::size_t longest = 0;
    for (const auto& s : names) longest = std::max(longest, s.size());
    const double cell = 48, label_w = 20 + 7.0 * static_cast<double>(longest), left = label_w + 30, top = 50 + label_w;
    const double w = std::max(left + cell * static_cast<double>(n) + 20, 9.0 * static_cast<double>(title.size()) + 40),
                 h = top + cell * static_cast<double>(n) + 20;
    std::ostringstream os;
    os << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << w << "\" height=\"" << h << "\" viewBox=\"0 0 " << w
       << ' ' << h << "\" font-family=\"sans-serif\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
       << detail::text(w / 2, 20, title, "middle", 15, " font-weight=\"bold\"")
       << detail::text(left + cell * static_cast<double>(n) / 2, 40, "predicted", "middle", 12)
       << detail::text(14, top + cell * static_cast<double>(n) / 2, "true class", "middle", 12,
                       " transform=\"rotate(-90 14 " + detail::num(top + cell * static_cast<double>(n) / 2) + ")\"");
    for (std::size_t j = 0; j < n; ++j) {
        const double x = left + cell * (static_cast<double>(j) + 0.5) + 4, y = top - 6;
        os << detail::text(x, y, names[j], "start", 12,
                           " transform=\"rotate(-60 " + detail::num(x) + ' ' + detail::num(y) + ")\"");
    }
    for (std::size_t i = 0; i < n; ++i) {
        std::int64_t row_sum = 0;
        for (auto v : confusion[i]) row_sum += v;
        const double y = top + cell * static_cast<double>(i);
        os << detail::text(left - 6, y + cell / 2 + 4, names[i], "end", 12);
        for (std::size_t j = 0; j < n; ++j) {
            const double share = row_sum > 0 ? static_cast<double>(confusion[i][j]) / static_cast<double>(row_sum) : 0.0;
            // White -> dark blue; a square root lifts the small off-diagonal shares into view.
            const double t = std::sqrt(share);
            const int r = static_cast<int>(255 - t * (255 - 8)), g = static_cast<int>(255 - t * (255 - 48)),
                      b = static_cast<int>(255 - t * (255 - 107));
            const double x = left + cell * static_cast<double>(j);
            char fill[16];
            std::snprintf(fill, sizeof fill, "#%02x%02x%02x", r, g, b);
            os << "<rect x=\"" << detail::num(x) << "\" y=\"" << detail::num(y) << "\" width=\"" << cell
               << "\" height=\"" << cell << "\" fill=\"" << fill << "\" stroke=\"#fff\"/>\n";
            os << detail::text(x + cell / 2, y + cell / 2 + 4, std::to_string(confusion[i][j]), "middle", 11,
                               t > 0.6 ? " fill=\"white\"" : "");
        }
    }
    os << "</svg>\n";
    detail::write_file(path, os.str());
}

}  // namespace svg_plots
