/* Writes a sensor-like CSV table to stdout from a fixed seed: a timestamp,
 * a sensor id, readings with 1-4 decimals (some negative), a status code and
 * a regression target. Usage: gen_sensor ROWS [SEED] */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static uint64_t state;

static uint64_t next(void)
{
        uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
}

static double unit(void)
{
        return (double)(next() >> 11) / 9007199254740992.0;
}

static double gauss(void)
{
        double u = unit() + 1e-12, v = unit();
        return sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * v);
}

int main(int argc, char **argv)
{
        if (argc < 2) {
                fprintf(stderr, "usage: gen_sensor ROWS [SEED]\n");
                return 1;
        }
        long long rows = atoll(argv[1]);
        state = argc > 2 ? strtoull(argv[2], NULL, 10) : 42;
        printf("time,sensor,temperature,humidity,pressure,voltage,vibration,status,power\n");
        for (long long i = 0; i < rows; i++) {
                int sensor = (int)(next() % 64);
                double day = (double)i / 86400.0 * 2 * M_PI;
                double temp = 12.0 + 9.0 * sin(day + sensor * 0.1) + 0.8 * gauss();
                double hum = 60.0 - 1.5 * (temp - 12.0) + 4.0 * gauss();
                double pres = 1013.0 + 6.0 * sin(day / 7.0) + 0.3 * gauss();
                double volt = 3.3 + 0.05 * gauss();
                double vib = 0.02 * fabs(gauss()) * (sensor % 8 == 0 ? 10 : 1);
                int status = unit() < 0.97 ? 0 : (int)(1 + next() % 4);
                double power = 2.0 * temp - 0.3 * hum + 0.5 * (pres - 1013.0) + 30.0 * vib +
                               (status ? 5.0 : 0.0) + 0.5 * gauss();
                printf("%lld,%d,%.2f,%.1f,%.2f,%.3f,%.4f,%d,%.2f\n", 1700000000LL + i, sensor, temp,
                       hum < 0 ? 0 : hum, pres, volt, vib, status, power);
        }
        return 0;
}
