package build

// ImageIDStarted is imageIDStarted, for the tests of package build_test.
var ImageIDStarted = &imageIDStarted
