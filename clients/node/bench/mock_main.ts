// The mock provider in its own process for the benchmark: prints its URL, runs until killed.
import { startMockProvider } from '../test/mock_provider';

void startMockProvider().then((m) => process.stdout.write(m.url + '\n'));
