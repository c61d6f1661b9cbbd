// swift-tools-version: 6.0
import PackageDescription

// Joule: energy and carbon accounting for Mixture-of-Experts LLM serving.
// Layers (see DESIGN.md): joule → Calibration/Catalog → MoE → Hardware → Units.
// Pure modules (Units, Hardware, MoE, Calibration) do no I/O; Catalog reads Data/.
let package = Package(
    name: "Joule",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "joule", targets: ["joule"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", exact: "6.2.2"),
    ],
    targets: [
        .target(name: "Units"),
        .target(name: "Hardware", dependencies: ["Units"]),
        .target(name: "MoE", dependencies: ["Hardware", "Units"]),
        .target(name: "Calibration", dependencies: ["MoE", "Hardware", "Units"]),
        .target(
            name: "Catalog",
            dependencies: ["Hardware", "MoE", "Calibration", "Units", .product(name: "Yams", package: "Yams")]
        ),
        .executableTarget(
            name: "joule",
            dependencies: [
                "Catalog", "Calibration", "MoE", "Hardware", "Units",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "UnitsTests", dependencies: ["Units"]),
        .testTarget(name: "HardwareTests", dependencies: ["Hardware", "Units"]),
        .testTarget(name: "MoETests", dependencies: ["MoE", "Hardware", "Units"]),
        .testTarget(name: "CatalogTests", dependencies: ["Catalog", "MoE", "Hardware"]),
        .testTarget(name: "CalibrationTests", dependencies: ["Calibration", "Catalog", "MoE", "Hardware"]),
    ],
    swiftLanguageModes: [.v6]
)
