import Accounting

/// The Let's Wait Awhile data set's CSV (`Time,Carbon Intensity`; naive UTC times such as
/// `2020-01-01 00:30:00`; gCO₂/kWh). Each point lasts until the next; the last as long as the one
/// before it.
public enum LetsWaitAwhileCSV {
    public static func parse(_ text: String, file: String) throws -> [TimedValue] {
        let rows = try TimeSeriesCSV.parse(text, file: file, header: ("Time", "Carbon Intensity"))
        return rows.indices.map { i in
            let start = rows[i].epochSeconds
            let duration = i + 1 < rows.count ? rows[i + 1].epochSeconds - start : (i > 0 ? start - rows[i - 1].epochSeconds : 3600)
            return TimedValue(start: start, duration: duration, value: rows[i].value)
        }
    }
}
