#include "forming_window.h"

#include <gtest/gtest.h>

using namespace jsd;

TEST(FormingWindow, QuickLinksWidenItUpToTheMaximum) {
  FormingWindow w;
  EXPECT_EQ(w.width(), FormingWindow::kStart);
  w.ended(true, 20);
  EXPECT_EQ(w.width(), FormingWindow::kStart + 1);
  for (int i = 0; i < 100; ++i) w.ended(true, FormingWindow::kQuickMs);
  EXPECT_EQ(w.width(), FormingWindow::kMax);
}

TEST(FormingWindow, SlowLinksHalveItDownToOne) {
  FormingWindow w;
  for (int i = 0; i < 100; ++i) w.ended(true, 5);
  w.ended(true, FormingWindow::kSlowMs);  // up, but slow: still a sign of load
  EXPECT_EQ(w.width(), FormingWindow::kMax / 2);
  w.ended(false, 5000);  // timed out
  EXPECT_EQ(w.width(), FormingWindow::kMax / 4);
  for (int i = 0; i < 10; ++i) w.ended(false, 10000);
  EXPECT_EQ(w.width(), 1);
  w.ended(true, 30);
  EXPECT_EQ(w.width(), 2);
}

TEST(FormingWindow, FastFailuresAndMiddlingLinksLeaveItAlone) {
  FormingWindow w;
  w.ended(false, 3);  // connection refused: the peer is down, nobody is overloaded
  EXPECT_EQ(w.width(), FormingWindow::kStart);
  w.ended(true, FormingWindow::kQuickMs + 1);
  w.ended(false, FormingWindow::kSlowMs - 1);
  EXPECT_EQ(w.width(), FormingWindow::kStart);
}
