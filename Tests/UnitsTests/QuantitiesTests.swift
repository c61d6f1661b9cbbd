import Testing
import Units

@Suite struct QuantitiesTests {
    @Test(arguments: [(100.0, 2.0), (700, 0.047), (0, 5)])
    func powerTimesTimeIsEnergy(watts: Double, seconds: Double) {
        let energy = Power(watts: watts) * TimeSpan(seconds: seconds)
        #expect(energy.joules == watts * seconds)
        if seconds > 0 { #expect(abs((energy / TimeSpan(seconds: seconds)).watts - watts) < 1e-9) }
    }

    @Test func kilowattHoursRoundTrip() {
        #expect(Energy.kilowattHours(1).joules == 3.6e6)
        #expect(abs(Energy(joules: 7.2e6).kilowattHours - 2) < 1e-12)
        #expect(TimeSpan.hours(2).seconds == 7200)
        #expect(TimeSpan.microseconds(120.96).milliseconds == 0.12096)
    }

    @Test func precisionBytes() {
        #expect(Precision.fp8.bytesPerElement == 1)
        #expect(Precision.bf16.bytesPerElement == 2)
    }
}
