import ArgumentParser
import Calibration
import Catalog

struct Calibrate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compare Joule's model with every published figure in Data/calibration/targets.yaml.",
        discussion: """
        Prints the calibration table and exits non-zero if any checked row is outside its tolerance. \
        --markdown prints the table docs/calibration.md embeds (Scripts/generate-calibration-doc writes it).

        Examples:
          joule calibrate
          joule calibrate --markdown
        """
    )

    @OptionGroup var data: DataOptions
    @Flag(help: "Print the Markdown table only.") var markdown = false

    func run() throws {
        let (library, directory) = try failing { try Composition.library(data) }
        let targets = try failing { try Catalog.loadCalibrationTargets(from: directory) }
        let rows = try failing { try CalibrationRunner(library: library).run(targets) }
        print(CalibrationReport.markdown(rows), terminator: "")
        if !markdown { print("\n" + CalibrationReport.summary(rows)) }
        if rows.contains(where: { $0.passed == false }) { throw ExitCode(1) }
    }
}
